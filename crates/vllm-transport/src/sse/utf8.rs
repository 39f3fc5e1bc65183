//! UTF-8 validation of complete lines.
//!
//! `simdutf8` (SIMD validation, chosen at run time for the CPU) checks the common, valid
//! case; `std::str::from_utf8` locates the error in the rare invalid one, since `simdutf8`'s
//! fast API does not say where it is.

/// Validates `bytes` as UTF-8: `Err(valid_up_to)`, as [`std::str::Utf8Error`] would
/// report it, if they are not.
#[inline]
pub(super) fn validate(bytes: &[u8]) -> Result<&str, usize> {
    match simdutf8::basic::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(_) => std::str::from_utf8(bytes).map_err(|error| error.valid_up_to()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(bytes: &[u8]) {
        let expected = std::str::from_utf8(bytes).map_err(|e| e.valid_up_to());
        assert_eq!(
            validate(bytes).map(str::len),
            expected.map(str::len),
            "{bytes:x?}"
        );
    }

    /// Bytes at every boundary of the table of well-formed sequences.
    const EDGES: &[u8] = &[
        0x00, b'a', 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1,
        0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xF7, 0xF8, 0xFF,
    ];

    /// Every sequence of up to four edge bytes, at offsets that put it across the
    /// 32-byte blocks and the overlapping last block, and at the end.
    #[test]
    fn agrees_with_std_on_all_short_sequences_of_edge_bytes() {
        for prefix in [0, 30, 61] {
            for suffix in [0, 2] {
                let mut bytes = vec![b'x'; prefix + 4 + suffix];
                for &a in EDGES {
                    for &b in EDGES {
                        for &c in EDGES {
                            for &d in EDGES {
                                bytes[prefix..prefix + 4].copy_from_slice(&[a, b, c, d]);
                                check(&bytes);
                            }
                            check(&bytes[..prefix + 3]);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn agrees_with_std_on_every_byte_pair_at_every_block_position() {
        for prefix in 0..70 {
            let mut bytes = vec![b'x'; prefix + 2];
            for a in 0..=255u8 {
                for b in [0x41, 0x80, 0xA0, 0xBF, 0xC0] {
                    bytes[prefix..].copy_from_slice(&[a, b]);
                    check(&bytes);
                }
                check(&bytes[..prefix + 1]);
            }
        }
    }

    #[test]
    fn characters_in_ascii_runs_of_every_length() {
        let samples: [&[u8]; 8] = [
            "é".as_bytes(),
            "€".as_bytes(),
            "😀".as_bytes(),
            b"\xFF",
            b"\xC3",
            b"\xE2\x82",
            b"\xF0\x9F\x98",
            b"\xED\xA0\x80",
        ];
        for before in 0..100 {
            for sample in samples {
                for after in [0, 1, 31, 32, 33, 64] {
                    let mut bytes = vec![b'x'; before];
                    bytes.extend_from_slice(sample);
                    bytes.extend(std::iter::repeat_n(b'y', after));
                    check(&bytes);
                    bytes.extend_from_slice(sample);
                    check(&bytes);
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_std_on_random_bytes(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    4 => proptest::strategy::Just(b'a'),
                    1 => 0x80u8..=0xBF,
                    1 => 0xC0u8..=0xFF,
                    1 => proptest::prelude::any::<u8>(),
                ],
                0..200,
            )
        ) {
            check(&bytes);
        }

        #[test]
        fn accepts_any_string(text in ".{0,120}") {
            proptest::prop_assert_eq!(validate(text.as_bytes()), Ok(text.as_str()));
        }
    }
}
