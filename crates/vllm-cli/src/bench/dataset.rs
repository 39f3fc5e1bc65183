//! The prompts of a run, and their lengths in tokens.
//!
//! Lengths are exact when the server tokenizes (vLLM's `/tokenize` and `/detokenize`): a
//! random prompt is made of token ids, turned into text, and adjusted until the text is
//! exactly the wanted number of tokens, as vLLM's benchmark does with its local tokenizer.
//! Without those endpoints, lengths are estimated (4 characters a token) and the run says so.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::seq::SliceRandom as _;
use rand::{Rng as _, SeedableRng as _};
use serde::Deserialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use vllm_client::VllmClient;

use super::args::{DatasetName, ServeArgs};

/// One request's prompt, its length in tokens, and how many tokens to ask for.
#[derive(Debug, Clone)]
pub(crate) struct Turn {
    pub(crate) text: String,
    pub(crate) input_len: usize,
    pub(crate) output_len: usize,
}

/// A conversation: one turn for every dataset but multi-turn.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub(crate) turns: Vec<Turn>,
}

/// The prompts of a run.
#[derive(Debug)]
pub(crate) struct Dataset {
    pub(crate) samples: Vec<Sample>,
    /// What the user should know about how it was made (estimated lengths, oversampling).
    pub(crate) notes: Vec<String>,
    /// vLLM's benchmark sends `ignore_eos` with its random datasets, so that every request
    /// generates its output length; so do we.
    pub(crate) forces_ignore_eos: bool,
}

/// Prose to draw token ids from (its distinct tokens; the prompts are random sequences of
/// them, as vLLM's are random sequences of the vocabulary).
const CORPUS: &str = "The harbour town wakes before the sun. Fishing boats return with their \
nets folded, gulls circle the market, and the baker on the corner sets out loaves that are \
still too hot to hold. Children run along the sea wall counting ships, while their \
grandparents argue about the weather over small cups of strong coffee. By midday the square \
is loud with traders selling lemons, olives, copper pans, woollen blankets and old maps of \
islands nobody visits any more. A clockmaker repairs a pocket watch under a striped awning; \
a violinist tunes her instrument and plays a slow waltz that makes the tourists stop and \
listen. In the afternoon the wind turns, clouds gather over the hills, and the first heavy \
drops of rain send everyone running for the arcades. Engineers at the power station check \
the turbines, nurses change shifts at the hospital, and a library volunteer sorts returned \
books by colour because the catalogue computer has crashed again. Evening brings lanterns, \
music from open windows, the smell of grilled fish and garlic, and long conversations about \
politics, football, mathematics, gardening, astronomy and the price of bread. Somewhere a \
student finishes an essay on medieval trade routes; somewhere else a programmer finally \
finds the bug that kept the ferry timetable from loading. At midnight the lighthouse keeper \
climbs the spiral stairs, wipes the great lens, and watches the beam sweep across the dark \
water, patient and regular, until morning comes again. Quantum physics, Renaissance \
painting, volcanic geology, jazz harmony, 1842, 3.14159, e-mail@example.org, résumé, naïve.";

/// The session of the dataset's tokenizer calls: with several base URLs they all go to one
/// replica (replicas of a model share its tokenizer; vllm-mock replicas know only the ids
/// they made themselves).
const TOKENIZER_SESSION: &str = "vllm-rs-bench-tokenizer";

/// The server's tokenizer, when it has one.
#[derive(Clone)]
struct Tokenizer {
    client: VllmClient,
    model: String,
}

impl Tokenizer {
    async fn tokenize(&self, text: &str, special: bool) -> Result<Vec<u32>, String> {
        self.client
            .tokenizer
            .tokenize()
            .model(&self.model)
            .session_id(TOKENIZER_SESSION)
            .prompt(text)
            .add_special_tokens(special)
            .send()
            .await
            .map(|r| r.tokens)
            .map_err(|e| e.to_string())
    }

    async fn detokenize(&self, ids: &[u32]) -> Result<String, String> {
        self.client
            .tokenizer
            .detokenize()
            .model(&self.model)
            .session_id(TOKENIZER_SESSION)
            .tokens(ids.iter().copied())
            .send()
            .await
            .map(|r| r.prompt)
            .map_err(|e| e.to_string())
    }

    /// Text of exactly `target` tokens, starting from `ids`, with extra ids drawn from
    /// `pool` when it comes out short; gives the text and its length (which may miss the
    /// target after ten tries, as in vLLM).
    async fn exact(
        &self,
        mut ids: Vec<u32>,
        target: usize,
        pool: &[u32],
        rng: &mut StdRng,
    ) -> Result<(String, usize), String> {
        let mut text = String::new();
        for _ in 0..10 {
            text = self.detokenize(&ids).await?;
            let again = self.tokenize(&text, false).await?;
            if again.len() == target {
                return Ok((text, target));
            }
            ids = again;
            if ids.len() > target {
                ids.truncate(target);
            } else {
                while ids.len() < target {
                    ids.push(pool[rng.random_range(0..pool.len())]);
                }
            }
        }
        let len = self.tokenize(&text, false).await?.len();
        Ok((text, len))
    }
}

/// Draws lengths uniformly from `[len·(1−r), len·(1+r)]` (at least `min`).
fn length_range(len: usize, ratio: f64, min: usize) -> (usize, usize) {
    let low = ((len as f64) * (1.0 - ratio)).floor() as usize;
    let high = ((len as f64) * (1.0 + ratio)).ceil() as usize;
    (low.max(min), high.max(min))
}

/// Estimated text of about `tokens` tokens: corpus words from a random place, 4 characters a
/// token.
fn estimated_text(tokens: usize, rng: &mut StdRng) -> String {
    let words: Vec<&str> = CORPUS.split_whitespace().collect();
    let mut at = rng.random_range(0..words.len());
    let mut text = String::new();
    while text.len() < tokens * 4 {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(words[at % words.len()]);
        at += 1;
    }
    text
}

/// What a random prompt is made of.
struct RandomSpec {
    prefix: Vec<u32>,
    input_len: usize,
    output_len: usize,
}

/// Builds the dataset `args` names.
pub(crate) async fn build(
    args: &ServeArgs,
    client: &VllmClient,
    model: &str,
    count: usize,
) -> Result<Dataset, String> {
    let tokenizer = Tokenizer {
        client: client.clone(),
        model: model.to_owned(),
    };
    // Does the server tokenize? (vLLM does; most other servers do not.)
    let pool = match tokenizer.tokenize(CORPUS, false).await {
        Ok(ids) if !ids.is_empty() => Some(
            ids.into_iter()
                .collect::<BTreeSet<u32>>()
                .into_iter()
                .collect::<Vec<u32>>(),
        ),
        _ => None,
    };
    let mut notes = Vec::new();
    if pool.is_none() {
        notes.push(
            "the server has no /tokenize: input lengths are estimated (4 characters a token), not exact"
                .to_owned(),
        );
    }
    let tokenizer = pool.as_ref().map(|_| tokenizer);
    let mut rng = StdRng::seed_from_u64(args.seed);
    let count = count.max(1);
    match args.dataset_name {
        DatasetName::Random | DatasetName::MultiTurn => {
            let ratio = args.random_range_ratio;
            if !(0.0..1.0).contains(&ratio) {
                return Err(format!(
                    "--random-range-ratio {ratio}: want a number in [0, 1)"
                ));
            }
            let (in_low, in_high) = length_range(args.random_input_len, ratio, 0);
            let (out_low, out_high) = length_range(args.random_output_len, ratio, 1);
            if args.random_prefix_len + in_low == 0 {
                return Err(
                    "--random-input-len (with --random-prefix-len) leaves prompts of 0 tokens"
                        .into(),
                );
            }
            let turns_per = if args.dataset_name == DatasetName::MultiTurn {
                args.multi_turn_turns.max(1)
            } else {
                1
            };
            let conversations = count.div_ceil(turns_per);
            let prefix = match (&pool, args.random_prefix_len) {
                (_, 0) | (None, _) => Vec::new(),
                (Some(pool), n) => (0..n)
                    .map(|_| pool[rng.random_range(0..pool.len())])
                    .collect(),
            };
            let specs: Vec<RandomSpec> = (0..conversations * turns_per)
                .map(|_| RandomSpec {
                    prefix: prefix.clone(),
                    input_len: rng.random_range(in_low..=in_high),
                    output_len: rng.random_range(out_low..=out_high),
                })
                .collect();
            let turns = random_turns(specs, tokenizer, pool, args.seed, &mut rng).await?;
            let samples = turns
                .chunks(turns_per)
                .map(|turns| Sample {
                    turns: turns.to_vec(),
                })
                .collect();
            notes.push(format!(
                "random prompts of {in_low}–{in_high} tokens{}, {out_low}–{out_high} output tokens",
                if args.random_prefix_len > 0 {
                    format!(" after a shared prefix of {}", args.random_prefix_len)
                } else {
                    String::new()
                }
            ));
            Ok(Dataset {
                samples,
                notes,
                forces_ignore_eos: true,
            })
        }
        DatasetName::PrefixRepetition => {
            let prefixes = args.prefix_repetition_num_prefixes.max(1);
            if count < prefixes {
                return Err(format!(
                    "prefix_repetition: --num-prompts ({count}) must be at least --prefix-repetition-num-prefixes ({prefixes})"
                ));
            }
            let per_prefix = count / prefixes;
            let mut specs = Vec::new();
            for _ in 0..prefixes {
                let prefix: Vec<u32> = match &pool {
                    Some(pool) => (0..args.prefix_repetition_prefix_len)
                        .map(|_| pool[rng.random_range(0..pool.len())])
                        .collect(),
                    None => Vec::new(),
                };
                for _ in 0..per_prefix {
                    specs.push(RandomSpec {
                        prefix: prefix.clone(),
                        input_len: args.prefix_repetition_suffix_len,
                        output_len: args.prefix_repetition_output_len.max(1),
                    });
                }
            }
            let mut turns = random_turns(specs, tokenizer, pool, args.seed, &mut rng).await?;
            turns.shuffle(&mut rng);
            notes.push(format!(
                "{prefixes} shared prefixes of {} tokens, each with {per_prefix} suffixes of {} tokens",
                args.prefix_repetition_prefix_len, args.prefix_repetition_suffix_len
            ));
            Ok(Dataset {
                samples: turns
                    .into_iter()
                    .map(|t| Sample { turns: vec![t] })
                    .collect(),
                notes,
                forces_ignore_eos: false,
            })
        }
        DatasetName::Sharegpt => {
            let path = args.dataset_path.as_deref().ok_or(
                "--dataset-name sharegpt needs --dataset-path FILE (a ShareGPT JSON file)",
            )?;
            sharegpt(path, args, tokenizer.as_ref(), count, &mut rng, notes).await
        }
        DatasetName::Custom => {
            let path = args.dataset_path.as_deref().ok_or(
                "--dataset-name custom needs --dataset-path FILE (JSONL of {\"prompt\": …})",
            )?;
            custom(path, args, tokenizer.as_ref(), count, &mut rng, notes).await
        }
    }
}

/// Makes the random prompts `specs` describe, with exact lengths when the server tokenizes
/// (16 at a time).
async fn random_turns(
    specs: Vec<RandomSpec>,
    tokenizer: Option<Tokenizer>,
    pool: Option<Vec<u32>>,
    seed: u64,
    rng: &mut StdRng,
) -> Result<Vec<Turn>, String> {
    let (Some(tokenizer), Some(pool)) = (tokenizer, pool) else {
        return Ok(specs
            .into_iter()
            .map(|spec| Turn {
                text: estimated_text(spec.prefix.len() + spec.input_len, rng),
                input_len: spec.prefix.len() + spec.input_len,
                output_len: spec.output_len,
            })
            .collect());
    };
    let pool = Arc::new(pool);
    let slots = Arc::new(Semaphore::new(16));
    let mut tasks = JoinSet::new();
    for (index, spec) in specs.into_iter().enumerate() {
        let (tokenizer, pool, slots) = (tokenizer.clone(), pool.clone(), slots.clone());
        let mut rng =
            StdRng::seed_from_u64(seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        tasks.spawn(async move {
            let _slot = slots.acquire().await;
            let mut ids = spec.prefix;
            ids.extend((0..spec.input_len).map(|_| pool[rng.random_range(0..pool.len())]));
            let target = ids.len();
            let (text, len) = tokenizer.exact(ids, target, &pool, &mut rng).await?;
            Ok::<_, String>((
                index,
                Turn {
                    text,
                    input_len: len,
                    output_len: spec.output_len,
                },
            ))
        });
    }
    let mut turns: Vec<Option<Turn>> = vec![None; tasks.len()];
    while let Some(done) = tasks.join_next().await {
        let (index, turn) = done
            .map_err(|e| format!("making a prompt: {e}"))?
            .map_err(|e| format!("making a prompt with the server's tokenizer: {e}"))?;
        turns[index] = Some(turn);
    }
    Ok(turns.into_iter().flatten().collect())
}

#[derive(Deserialize)]
struct ShareGptEntry {
    #[serde(default)]
    conversations: Vec<ShareGptTurn>,
}

#[derive(Deserialize)]
struct ShareGptTurn {
    value: String,
}

/// A length in tokens: the server's count, or an estimate.
async fn count_tokens(tokenizer: Option<&Tokenizer>, text: &str) -> Result<usize, String> {
    match tokenizer {
        Some(tokenizer) => Ok(tokenizer.tokenize(text, true).await?.len()),
        None => Ok(text.len().div_ceil(4)),
    }
}

/// ShareGPT, as vLLM reads it: the first turn is the prompt, the second's length the output
/// length; prompts under 4 or over 1024 tokens, answers under 4, and pairs over 2048 are left
/// out; the rest shuffled with the seed, and drawn again when there are too few.
async fn sharegpt(
    path: &Path,
    args: &ServeArgs,
    tokenizer: Option<&Tokenizer>,
    count: usize,
    rng: &mut StdRng,
    mut notes: Vec<String>,
) -> Result<Dataset, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read --dataset-path {}: {e}", path.display()))?;
    let entries: Vec<ShareGptEntry> = serde_json::from_str(&text).map_err(|e| {
        format!(
            "--dataset-path {} is not a ShareGPT file (a JSON array of {{\"conversations\": [{{\"from\", \"value\"}}, …]}}): {e}",
            path.display()
        )
    })?;
    let mut pairs: Vec<(String, String)> = entries
        .into_iter()
        .filter(|e| e.conversations.len() >= 2)
        .map(|mut e| {
            let answer = e.conversations.swap_remove(1).value;
            (e.conversations.swap_remove(0).value, answer)
        })
        .collect();
    pairs.shuffle(rng);
    let mut turns = Vec::new();
    for (prompt, answer) in pairs {
        if turns.len() == count {
            break;
        }
        let input_len = count_tokens(tokenizer, &prompt).await?;
        let output_len = match args.sharegpt_output_len {
            Some(len) => len,
            None => count_tokens(tokenizer, &answer).await?,
        };
        let too_short = input_len < 4 || (args.sharegpt_output_len.is_none() && output_len < 4);
        if too_short || input_len > 1024 || input_len + output_len > 2048 {
            continue;
        }
        turns.push(Turn {
            text: prompt,
            input_len,
            output_len,
        });
    }
    if turns.is_empty() {
        return Err(format!(
            "{}: no conversation fits (two turns or more, a prompt of 4–1024 tokens, an answer of 4 or more, 2048 together)",
            path.display()
        ));
    }
    let found = turns.len();
    while turns.len() < count {
        let again = turns[rng.random_range(0..found)].clone();
        turns.push(again);
    }
    if found < count {
        notes.push(format!(
            "{}: {found} usable conversations, drawn again to make {count}",
            path.display()
        ));
    }
    Ok(Dataset {
        samples: turns
            .into_iter()
            .map(|t| Sample { turns: vec![t] })
            .collect(),
        notes,
        forces_ignore_eos: false,
    })
}

#[derive(Deserialize)]
struct CustomLine {
    prompt: String,
}

/// A JSONL file of `{"prompt": …}` lines, shuffled with the seed; every request asks for
/// `--custom-output-len` tokens.
async fn custom(
    path: &Path,
    args: &ServeArgs,
    tokenizer: Option<&Tokenizer>,
    count: usize,
    rng: &mut StdRng,
    notes: Vec<String>,
) -> Result<Dataset, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read --dataset-path {}: {e}", path.display()))?;
    let mut prompts = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed: CustomLine = serde_json::from_str(line).map_err(|e| {
            format!(
                "{}:{}: not a {{\"prompt\": …}} line: {e}",
                path.display(),
                number + 1
            )
        })?;
        prompts.push(parsed.prompt);
    }
    if prompts.is_empty() {
        return Err(format!("{}: no prompts", path.display()));
    }
    prompts.shuffle(rng);
    prompts.truncate(count);
    let mut samples = Vec::new();
    for prompt in prompts {
        let input_len = count_tokens(tokenizer, &prompt).await?;
        samples.push(Sample {
            turns: vec![Turn {
                text: prompt,
                input_len,
                output_len: args.custom_output_len,
            }],
        });
    }
    Ok(Dataset {
        samples,
        notes,
        forces_ignore_eos: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_vllms() {
        assert_eq!(length_range(100, 0.0, 0), (100, 100));
        assert_eq!(length_range(100, 0.25, 0), (75, 125));
        assert_eq!(length_range(3, 0.5, 1), (1, 5));
        assert_eq!(length_range(0, 0.5, 1), (1, 1));
    }

    #[test]
    fn estimated_text_is_four_characters_a_token() {
        let mut rng = StdRng::seed_from_u64(1);
        let text = estimated_text(100, &mut rng);
        assert!((400..460).contains(&text.len()), "{}", text.len());
    }
}
