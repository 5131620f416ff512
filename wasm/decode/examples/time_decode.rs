//! Native timing of the decoder (not part of the wasm build): `cargo run --release
//! --example time_decode FILE DENOM`.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let data = std::fs::read(&args[1]).unwrap();
    let denom: usize = args[2].parse().unwrap();
    let mut times = Vec::new();
    for _ in 0..9 {
        let t0 = std::time::Instant::now();
        let img = jpeg_decode::jpeg::decode(&data, denom).unwrap();
        times.push(t0.elapsed().as_secs_f64() * 1000.0);
        assert!(img.width > 0);
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("median {:.2} ms", times[4]);
}
