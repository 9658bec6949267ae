//! `leadping-contract-gate OLD.json NEW.json [--openapi-diff-breaking]`: prints what changed
//! between two versions of the contract and exits 1 when a change breaks existing clients
//! without a new major version (2 when a document cannot be read). `--openapi-diff-breaking`
//! says that openapi-diff, run beside it, found breaking differences, so that one rule (a new
//! major version lets breaks through) decides for both tools.

use std::process::ExitCode;

fn read(path: &str) -> anyhow::Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {path}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{path} is not JSON: {e}"))
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let openapi_diff_breaking = args.iter().any(|a| a == "--openapi-diff-breaking");
    args.retain(|a| a != "--openapi-diff-breaking");
    let [old, new] = args.as_slice() else {
        eprintln!("usage: leadping-contract-gate OLD.json NEW.json [--openapi-diff-breaking]");
        return ExitCode::from(2);
    };
    let verdict = match read(old)
        .and_then(|o| read(new).map(|n| (o, n)))
        .and_then(|(o, n)| leadping_contract_gate::judge(&o, &n))
    {
        Ok(mut v) => {
            if openapi_diff_breaking {
                v.breaking
                    .push("openapi-diff found breaking differences (listed above)".into());
            }
            v
        }
        Err(e) => {
            eprintln!("contract gate: {e:#}");
            return ExitCode::from(2);
        }
    };
    print!("{}", verdict.report());
    if verdict.passes() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
