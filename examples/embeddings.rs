//! Embeddings of several texts, as floats and as base64 (decoded for you), and their cosine
//! similarity.
//!
//! `cargo run --example embeddings` (set `VLLM_BASE_URL` to an embedding model's server).

#[path = "common/mod.rs"]
mod common;

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let common::Setup {
        client,
        model,
        mock: _mock,
    } = common::setup().await?;
    let texts = [
        "A cat sits on the mat.",
        "A kitten rests on a rug.",
        "Stock prices fell sharply.",
    ];
    let floats = client
        .embeddings
        .create()
        .model(&model)
        .input(texts)
        .send()
        .await?;
    let base64 = client
        .embeddings
        .create()
        .model(&model)
        .input(texts)
        .encoding_format("base64")
        .send()
        .await?;
    println!(
        "{} vectors of {} dimensions",
        floats.vectors.len(),
        floats.vectors[0].len()
    );
    for (i, j) in [(0, 1), (0, 2)] {
        println!(
            "cosine({:?}, {:?}) = {:.3}",
            texts[i],
            texts[j],
            cosine(&floats.vectors[i], &floats.vectors[j])
        );
    }
    let same = floats
        .vectors
        .iter()
        .zip(&base64.vectors)
        .all(|(a, b)| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6));
    println!("float and base64 encodings agree: {same}");
    Ok(())
}
