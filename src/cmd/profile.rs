//! `pique profile list|show|calibrate`: the architecture profiles (crate `pique-core`) and
//! their calibration against a real deployment (crate `pique-load`).

use clap::{Args, Subcommand};
use pique_core::profile::{self, CacheState, Profile};
use pique_load::calibrate::CalibrateArgs;

/// What `pique profile` can do.
#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// The profiles built in and shipped in profiles/.
    List,
    /// A profile's settings and, per route, what the model predicts it serves when saturated.
    Show(ShowArgs),
    /// Measure a deployment's public reads (GET only) and write a profile that imitates it.
    Calibrate(CalibrateArgs),
}

/// `pique profile show NAME|PATH [--workers W] [--threads T] [--cores C]`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A profile name (rust, django-railway, django-recommended) or a profile file's path.
    pub profile: String,
    /// Predict with this many workers instead (what more workers would buy).
    #[arg(long)]
    pub workers: Option<u32>,
    /// Predict with this many threads per worker instead.
    #[arg(long)]
    pub threads: Option<u32>,
    /// Predict with this many cores instead.
    #[arg(long)]
    pub cores: Option<u32>,
}

/// Runs the subcommand.
pub async fn run(command: ProfileCommand) -> anyhow::Result<u8> {
    match command {
        ProfileCommand::List => {
            for name in profile::known_names() {
                let p = Profile::resolve(name)?;
                println!("{name:<20} {}", p.description);
            }
            println!("\nor PIQUE_PROFILE=path/to/file.toml (see docs/profiles.md)");
            Ok(0)
        }
        ProfileCommand::Show(args) => {
            let p = Profile::resolve(&args.profile)?;
            print!("{}", describe(&p, &args));
            Ok(0)
        }
        ProfileCommand::Calibrate(args) => {
            let calibration =
                pique_load::calibrate::calibrate(&args, &|line| eprintln!("{line}")).await?;
            println!(
                "profile {} written to {}; select it with PIQUE_PROFILE={}",
                calibration.profile.name,
                calibration.path.display(),
                calibration.path.display()
            );
            Ok(0)
        }
    }
}

/// The profile's settings and per-route predictions, as printed by `show`.
fn describe(p: &Profile, args: &ShowArgs) -> String {
    let mut out = format!("{} ({}): {}\n", p.name, p.origin, p.description);
    let Some(mut g) = p.gunicorn.clone() else {
        out.push_str("no model: the replica runs at its own speed\n");
        return out;
    };
    if let Some(w) = args.workers {
        g.workers = w.max(1);
    }
    if let Some(t) = args.threads {
        g.threads = t.max(1);
    }
    if args.cores.is_some() {
        g.cores = args.cores;
    }
    let summary = Profile {
        gunicorn: Some(g.clone()),
        ..Profile::rust()
    }
    .model_summary();
    out.push_str(&format!(
        "{summary} on {} cores; worker_connections {}, backlog {}, timeout {} s, \
         max_requests {} + 0..={} (restart {} s)\n\n",
        g.cores
            .map_or_else(|| "as many".to_string(), |c| c.to_string()),
        g.worker_connections,
        g.backlog,
        g.timeout_secs,
        g.max_requests,
        g.max_requests_jitter,
        g.restart_secs,
    ));
    out.push_str(&format!(
        "{:<8}{:<28}{:<7}{:>18}{:>18}{:>16}\n",
        "method", "route", "cache", "cpu p50/p99 ms", "io p50/p99 ms", "saturated req/s"
    ));
    for r in &p.routes {
        let cache = match r.cache {
            CacheState::Any => "any",
            CacheState::Hit => "hit",
            CacheState::Miss => "miss",
        };
        let dist =
            |d: &profile::Dist| format!("{:.2}/{:.2}", d.p50_ms, d.p99_ms.unwrap_or(d.p50_ms));
        out.push_str(&format!(
            "{:<8}{:<28}{:<7}{:>18}{:>18}{:>16.0}\n",
            r.method.as_deref().unwrap_or("*"),
            r.path,
            cache,
            dist(&r.cpu),
            dist(&r.io),
            g.saturated_throughput(r)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_predicts_what_more_workers_buy() {
        let p = Profile::resolve("django-railway").expect("embedded");
        let args = |workers| ShowArgs {
            profile: "django-railway".into(),
            workers,
            threads: None,
            cores: None,
        };
        let one = describe(&p, &args(None));
        assert!(one.contains("/api/v1/shows/{id}/"), "{one}");
        assert!(one.contains(" 149\n"), "{one}");
        let two = describe(&p, &args(Some(2)));
        assert!(two.contains(" 298\n"), "{two}");
        // Four workers on the same two cores: more than two only because, while one
        // restarts, the others use its core; never the two cores' 604/s.
        let four = describe(&p, &args(Some(4)));
        assert!(four.contains(" 399\n"), "{four}");
    }
}
