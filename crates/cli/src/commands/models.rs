use anyhow::Result;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print the list as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    if args.json {
        let list: Vec<_> = convnet_zoo::models()
            .iter()
            .map(|m| serde_json::json!({ "name": m.name, "description": m.description }))
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        for m in convnet_zoo::models() {
            println!("{:<16} {}", m.name, m.description);
        }
    }
    Ok(())
}
