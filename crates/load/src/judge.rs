//! Judging a run: the plan's thresholds (the exit code) and the original plan's success
//! criteria (the verdict), from the run's statistics at any moment.
//!
//! The end of a run judges once; a live view judges the same way every few seconds while the
//! run goes ("graded so far"), so both say the same thing about the same data.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::engine::CapacityResult;
use crate::engine::watch::{self, GeneratorHealth};
use crate::grade::{self, GradeInput, GradeRow, Rules};
use crate::plan::{Plan, Step};
use crate::report::ThresholdResult;
use crate::scrape::ServerSummary;
use crate::stats::{Point, RequestStats, Stats};

/// What a plan is judged by, resolved once per run.
#[derive(Debug)]
pub struct Judge {
    plan: Arc<Plan>,
    rules: Rules,
    /// Keys of POSTs to `/checkout/` (the seed's checkout criteria, whatever the step's name).
    checkout_keys: Vec<usize>,
    /// Keys of completions of polled (queued) checkouts.
    done_keys: Vec<usize>,
    /// Keys of POSTs to `/success/`.
    success_keys: Vec<usize>,
    /// Steps whose `when` variables nothing in this run can set (see [`steps_never_run`]).
    never_run: HashMap<usize, Vec<String>>,
}

impl Judge {
    /// The judge of `plan` (already overridden and scaled) run with the initial `vars`.
    pub fn new(plan: Arc<Plan>, vars: &HashMap<String, Value>, time_scale: f64) -> Self {
        let keys_where = |pred: &dyn Fn(&Step) -> bool| -> Vec<usize> {
            let mut keys: Vec<usize> = plan
                .steps()
                .filter(|(_, s)| pred(s))
                .map(|(_, s)| s.key)
                .collect();
            keys.sort_unstable();
            keys.dedup();
            keys
        };
        // The original plan's checkout criteria apply to POSTs to these paths, whatever the
        // step is named; a queued checkout completes in a step polling its status.
        let path = |s: &Step| s.path.source().to_string();
        let checkout_keys = keys_where(&|s| {
            s.method == "POST" && path(s).contains("/checkout/") && !path(s).contains("/status")
        });
        let done_keys = keys_where(&|s| s.until.is_some() && path(s).contains("/checkout/status"));
        let success_keys = keys_where(&|s| s.method == "POST" && path(s).contains("/success/"));
        let rules = plan
            .grading
            .rules(time_scale, Some(plan.target_users()).filter(|u| *u > 0));
        let never_run = steps_never_run(&plan, vars);
        Self {
            plan,
            rules,
            checkout_keys,
            done_keys,
            success_keys,
            never_run,
        }
    }

    /// How the run is graded.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Grades the success criteria on the data so far: `aggregated` and `methods` from
    /// [`Stats::table`], the one-second `series`, the server side and the capacity steps.
    #[allow(clippy::too_many_arguments)]
    pub fn grade(
        &self,
        stats: &Stats,
        aggregated: &RequestStats,
        methods: &[RequestStats],
        run_secs: f64,
        series: &[Point],
        server: &ServerSummary,
        capacity: Option<&CapacityResult>,
    ) -> Vec<GradeRow> {
        let checkout = stats.group(&self.checkout_keys, "POST", "/checkout/", run_secs);
        let checkout_done = stats.group(&self.done_keys, "GET", "/checkout/ [done]", run_secs);
        let success = stats.group(&self.success_keys, "POST", "/success/", run_secs);
        grade::grade(&GradeInput {
            aggregated,
            methods,
            checkout: checkout.as_ref(),
            checkout_done: checkout_done.as_ref(),
            success: success.as_ref(),
            run_secs,
            series,
            server,
            capacity,
            rules: &self.rules,
        })
    }

    /// Evaluates every threshold of the plan on the data so far; `rows` are the per-key rows
    /// of [`Stats::table`].
    pub fn thresholds(
        &self,
        stats: &Stats,
        rows: &[RequestStats],
        run_secs: f64,
    ) -> Vec<ThresholdResult> {
        let plan = &self.plan;
        let mut out = Vec::new();
        for (scope, list) in &plan.thresholds {
            let keys: Option<Vec<usize>> = (scope != "*").then(|| {
                plan.request_keys
                    .iter()
                    .enumerate()
                    .filter(|(_, k)| k.name == *scope)
                    .map(|(i, _)| i)
                    .collect()
            });
            for t in list {
                let measured = stats.measure(keys.as_deref(), t.metric, run_secs);
                let (passed, skipped, note) = match measured {
                    Some(m) => (t.op.holds(m, t.limit), false, String::new()),
                    None => no_data(plan, keys.as_deref(), &self.never_run, stats, rows),
                };
                out.push(ThresholdResult {
                    scope: scope.clone(),
                    expr: t.source.clone(),
                    measured,
                    passed,
                    skipped,
                    note,
                });
            }
        }
        out
    }
}

/// The verdict of `grades`, and how the generator itself fared over `series`: when it fell
/// behind, failures that its own delays could explain are not blamed on the server.
pub fn verdict(grades: &[GradeRow], series: &[Point]) -> (String, GeneratorHealth) {
    let generator = GeneratorHealth::of(series, watch::cores());
    let verdict = if generator.saturated {
        grade::verdict_with_generator_behind(grades, &generator.describe())
    } else {
        grade::verdict(grades)
    };
    (verdict, generator)
}

/// The exit code thresholds give: 1 when one failed, 0 otherwise (skipped ones do not count).
pub fn exit_code(thresholds: &[ThresholdResult]) -> i32 {
    i32::from(thresholds.iter().any(|t| !t.passed && !t.skipped))
}

/// For every step (by [`Step::index`]), the `when` variables that nothing can ever set in this
/// run: not in the plan's `vars`, not given with `--var`, never captured or `set` by the
/// class. Such a step never runs (a payment step without `--var stripe_base`).
fn steps_never_run(plan: &Plan, vars: &HashMap<String, Value>) -> HashMap<usize, Vec<String>> {
    let mut out = HashMap::new();
    for class in &plan.users {
        let steps: Vec<&Step> = class
            .on_start
            .iter()
            .chain(class.tasks.iter().flat_map(|t| t.steps.iter()))
            .collect();
        let produced = |v: &str| {
            vars.contains_key(v)
                || steps
                    .iter()
                    .any(|s| s.capture.iter().any(|c| c.var == v) || s.set.contains_key(v))
        };
        for s in &steps {
            let unset: Vec<String> = s.when.iter().filter(|v| !produced(v)).cloned().collect();
            if !unset.is_empty() {
                out.insert(s.index, unset);
            }
        }
    }
    out
}

/// A threshold without data: skipped when every step it covers did not run because of its
/// `when` variables (unset by the run, like `stripe_base` without `--var`, or never captured,
/// like the status poll of a checkout that was not queued); failed otherwise, with the reason.
fn no_data(
    plan: &Plan,
    keys: Option<&[usize]>,
    never_run: &HashMap<usize, Vec<String>>,
    stats: &Stats,
    rows: &[RequestStats],
) -> (bool, bool, String) {
    let Some(keys) = keys else {
        return (false, false, "no requests completed".into());
    };
    let steps: Vec<&Step> = plan
        .steps()
        .map(|(_, s)| s)
        .filter(|s| keys.contains(&s.key) || keys.contains(&s.poll_key))
        .collect();
    let not_wanted = |s: &Step| never_run.contains_key(&s.index) || stats.unmet_count(s.key) > 0;
    if !steps.is_empty() && steps.iter().all(|s| not_wanted(s)) {
        let mut unset: Vec<&str> = steps
            .iter()
            .flat_map(|s| s.when.iter())
            .map(String::as_str)
            .collect();
        unset.sort_unstable();
        unset.dedup();
        let given_with_var: Vec<String> = steps
            .iter()
            .filter_map(|s| never_run.get(&s.index))
            .flatten()
            .map(|v| format!("--var {v}=..."))
            .collect();
        let hint = if given_with_var.is_empty() {
            String::new()
        } else {
            format!("; give {}", given_with_var.join(", "))
        };
        return (
            false,
            true,
            format!(
                "skipped: `when` {} never set in this run{hint}",
                unset.join(", ")
            ),
        );
    }
    let skipped: u64 = rows
        .iter()
        .filter(|r| {
            keys.iter().any(|k| {
                plan.request_keys
                    .get(*k)
                    .is_some_and(|key| key.name == r.name && key.method == r.method)
            })
        })
        .map(|r| r.skipped)
        .sum();
    let note = if skipped > 0 {
        format!("failed: no requests ran; skipped {skipped} times for a missing variable")
    } else {
        "failed: no requests ran, although the plan should have sent some".into()
    };
    (false, false, note)
}
