//! # pique-load
//!
//! A load generator for HTTP APIs that runs Locust/k6-style scenarios written as TOML plans, and
//! Artillery configs as they are, measures them correctly (HdrHistograms, open-model timing
//! from the intended start, the generator's own load watched), scrapes the server side, grades
//! the run against the PiqueTickets load-testing plan's success criteria and writes a
//! self-contained HTML report plus Locust-format CSVs.
//!
//! ```no_run
//! # async fn demo() -> Result<(), pique_load::LoadError> {
//! let plan = pique_load::Plan::load("loadtests/smoke/baseline.toml")?;
//! let opts = pique_load::RunOptions { hosts: vec!["http://127.0.0.1:8080".into()], ..Default::default() };
//! let outcome = pique_load::run_plan(&plan, &opts).await?;
//! println!("{} -> {}", outcome.report_path.display(), outcome.verdict);
//! std::process::exit(outcome.exit_code);
//! # }
//! ```

#![warn(missing_docs)]

pub mod artillery;
pub mod calibrate;
pub mod cli;
pub mod compare;
pub mod distributed;
pub mod duration;
pub mod engine;
pub mod error;
pub mod exporter;
pub mod grade;
pub mod judge;
pub mod live;
pub mod observe;
pub mod plan;
pub mod progress;
pub mod report;
pub mod run;
pub mod scrape;
pub mod shape;
pub mod stats;
pub mod template;
pub mod threshold;
pub mod ui;

pub use cli::{CompareArgs, ConvertArgs, ReportArgs, RunArgs, RunCommand, UiArgs, WorkerArgs};
pub use compare::compare;
pub use distributed::{DistributedOptions, WorkerOptions, run_worker};
pub use error::{LoadError, PlanError};
pub use exporter::Exporter;
pub use observe::{Observer, Observers};
pub use plan::{Plan, demo_plan};
pub use report::{Summary, rerender};
pub use run::{RunControl, RunOptions, RunOutcome, run_plan, run_plan_controlled};
pub use ui::{UiConfig, run_with_ui, serve_ui};
