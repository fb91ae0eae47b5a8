//! Every plan in loadtests/ and loadtests/smoke/ parses and validates; bad plans point at a line.

use std::path::PathBuf;

use pique_load::Plan;
use pique_load::plan::ShapeRef;

fn plans_in(dir: &str) -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../loadtests")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml" || x == "yml"))
        .collect();
    files.sort();
    files
}

const PHASES: [&str; 10] = [
    "artillery-sample.yml",
    "baseline.toml",
    "capacity.toml",
    "checkout.toml",
    "k6-sample.toml",
    "locust-sample.toml",
    "mixed.toml",
    "read-heavy.toml",
    "soak.toml",
    "spike.toml",
];

#[test]
fn every_plan_parses_and_has_a_smoke_twin() {
    let full = plans_in("");
    let smoke = plans_in("smoke");
    let names = |v: &[PathBuf]| -> Vec<String> {
        v.iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(names(&full), PHASES);
    assert_eq!(names(&smoke), PHASES);
    for p in full.iter().chain(&smoke) {
        Plan::load(p).unwrap_or_else(|e| panic!("{e}"));
    }
    // The benchmark plans the scripts run.
    let bench = plans_in("bench");
    assert!(
        names(&bench).contains(&"checkout-burst.toml".to_string()),
        "{bench:?}"
    );
    for p in &bench {
        Plan::load(p).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn smoke_plans_are_short_and_bounded() {
    for p in plans_in("smoke") {
        let plan = Plan::load(&p).unwrap();
        if let ShapeRef::Arrival(a) = plan.shape()
            && plan.run_time.is_none()
        {
            // An Artillery config has no caps: its phases bound it.
            let total: std::time::Duration = a.stages.iter().map(|s| s.duration.0).sum();
            assert!(total.as_secs() <= 10, "{}", p.display());
            continue;
        }
        let rt = plan.run_time.expect("smoke plans set run_time").0;
        assert!(rt.as_secs() <= 10, "{}", p.display());
        assert!(plan.max_requests.is_some(), "{}", p.display());
    }
}

#[test]
fn plans_carry_the_original_plans_numbers() {
    let load = |f: &str| {
        Plan::load(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../loadtests")
                .join(f),
        )
        .unwrap()
    };
    let baseline = load("baseline.toml");
    assert!(
        matches!(baseline.shape(), ShapeRef::Stages([s]) if s.users == 100 && s.spawn_rate == Some(10.0) && s.duration.0.as_secs() == 1800)
    );
    let spike = load("spike.toml");
    assert!(
        matches!(spike.shape(), ShapeRef::Stages([a, b]) if a.users == 500 && a.duration.0.as_secs() == 60 && a.duration.0 + b.duration.0 == std::time::Duration::from_secs(600))
    );
    // The ramp, then two full hours at 100 users (Sustained Load counts from when reached).
    let soak = load("soak.toml");
    assert!(
        matches!(soak.shape(), ShapeRef::Stages([ramp, hold]) if ramp.users == 100 && ramp.spawn_rate == Some(10.0) && hold.users == 100 && hold.duration.0.as_secs() == 7200)
    );
    let phase = |f: &str| load(f).grading.phase.name();
    assert_eq!(
        [
            "baseline.toml",
            "read-heavy.toml",
            "checkout.toml",
            "spike.toml",
            "soak.toml",
            "capacity.toml",
            "mixed.toml"
        ]
        .map(phase),
        [
            "baseline",
            "read-heavy",
            "checkout",
            "spike",
            "soak",
            "capacity",
            "mixed"
        ]
    );
    let cap = load("capacity.toml");
    assert!(
        matches!(cap.shape(), ShapeRef::Capacity(c) if c.start_users == 10 && c.step_users == 10 && c.step_every.0.as_secs() == 120 && c.stop_error_rate == Some(0.05))
    );
    let mixed = load("mixed.toml");
    let weights: Vec<u32> = mixed.users.iter().map(|u| u.weight).collect();
    assert_eq!(weights, [60, 25, 10, 5]);
    let locust = load("locust-sample.toml");
    let weights: Vec<(&str, u32)> = locust
        .users
        .iter()
        .map(|u| (u.name.as_str(), u.weight))
        .collect();
    assert_eq!(
        weights,
        [
            ("ShowBrowsingUser", 7),
            ("CheckoutUser", 2),
            ("ProducerUser", 1)
        ]
    );
    let read = load("read-heavy.toml");
    let tasks: Vec<u32> = read.users[0].tasks.iter().map(|t| t.weight).collect();
    assert_eq!(tasks, [70, 20, 10]);
    let art = load("artillery-sample.yml");
    assert_eq!(
        art.warnings.len(),
        1,
        "the sample's processor.js: {:?}",
        art.warnings
    );
    assert!(
        matches!(art.shape(), ShapeRef::Arrival(a) if a.stages[0].rate == 10.0 && a.stages[1].rate == 50.0)
    );
}

#[test]
fn a_bad_plan_file_reports_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "name = \"bad\"\n[[stages]]\nduration = \"10q\"\nusers = 1\n[[users]]\nname = \"U\"\n[[users.tasks]]\nsteps = [{ path = \"/\" }]\n",
    )
    .unwrap();
    let err = Plan::load(&path).unwrap_err();
    assert_eq!(err.line(), Some(3), "{err}");
    assert!(err.to_string().contains("bad duration"), "{err}");

    std::fs::write(
        &path,
        "name = \"bad\"\n[[stages]]\nduration = \"10s\"\nusers = 1\n[[users]]\nname = \"U\"\n[[users.tasks]]\nweight = 0\nsteps = [{ path = \"/\" }]\n",
    )
    .unwrap();
    let err = Plan::load(&path).unwrap_err();
    assert_eq!(err.line(), Some(8), "{err}");
}
