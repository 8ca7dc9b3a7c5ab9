//! Development aid: scores a JSON-lines file natively and prints the full record of the given
//! line numbers. `cargo run --release -p oddity-engine --example explain -- EVENTS.jsonl CONFIG|"" LINE...`

use std::io::BufRead;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let config = if args[2].is_empty() {
        String::new()
    } else {
        std::fs::read_to_string(&args[2])?
    };
    let want: Vec<usize> = args[3..].iter().filter_map(|a| a.parse().ok()).collect();
    let last = want.iter().copied().max().unwrap_or(0);
    let mut engine = oddity_engine::Engine::new(&config)?;
    for (i, line) in std::io::BufReader::new(std::fs::File::open(&args[1])?)
        .lines()
        .enumerate()
    {
        let line = line?;
        let r = engine.score_line(line.as_bytes());
        if want.contains(&(i + 1)) {
            println!("line {}: {r:#?}", i + 1);
        }
        if i + 1 >= last {
            break;
        }
    }
    Ok(())
}
