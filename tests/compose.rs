//! `docker-compose.yml` and the `Dockerfile` checked against the code, since no Docker engine
//! runs in CI: services, health checks, dependency order, environment names the code reads,
//! and commands the `pique` binary accepts.

// Test code: a failed unwrap is a failed test (helpers included, not only #[test] fns).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::BTreeSet, process::Command};

use clap::Args;
use serde::Deserialize;
use serde_yaml::Value;

fn compose() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docker-compose.yml"))
        .expect("read compose");
    let mut value: Value = serde_yaml::from_str(&text).expect("compose parses as YAML");
    value.apply_merge().expect("merge keys resolve");
    value
}

fn service<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["services"]
        .get(name)
        .unwrap_or_else(|| panic!("service {name} missing"))
}

fn env_keys(service: &Value) -> BTreeSet<String> {
    service["environment"]
        .as_mapping()
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_service_is_present_with_health_checks_and_order() {
    let doc = compose();
    let names: BTreeSet<&str> = doc["services"]
        .as_mapping()
        .expect("services")
        .keys()
        .filter_map(|k| k.as_str())
        .collect();
    for expected in [
        "postgres",
        "redis",
        "mailpit",
        "seed",
        "stripe-sim",
        "api",
        "worker-pdf",
        "worker-email",
        "load",
        "load-ui",
        "prometheus",
        "grafana",
    ] {
        assert!(names.contains(expected), "{expected}");
    }
    for long_running in [
        "postgres",
        "redis",
        "mailpit",
        "stripe-sim",
        "api",
        "worker-pdf",
        "worker-email",
        "load-ui",
        "prometheus",
        "grafana",
    ] {
        assert!(
            service(&doc, long_running)["healthcheck"]["test"].is_sequence(),
            "{long_running} has a health check"
        );
    }
    let api = service(&doc, "api");
    assert_eq!(
        api["depends_on"]["seed"]["condition"],
        "service_completed_successfully"
    );
    assert_eq!(api["depends_on"]["redis"]["condition"], "service_healthy");
    assert_eq!(
        service(&doc, "seed")["depends_on"]["postgres"]["condition"],
        "service_healthy"
    );
    assert_eq!(
        strings(&api["ports"]),
        vec!["8080:8080"],
        "the port the seed's clients use"
    );
    // Workers must share the API's media volume: the API serves the PDFs they write.
    for s in ["api", "worker-pdf", "worker-email"] {
        assert!(
            strings(&service(&doc, s)["volumes"]).contains(&"media:/data/media".to_string()),
            "{s}"
        );
    }
    // At least one worker runs maintenance (outbox relay, sweeper, reconciler).
    let queues: Vec<String> = ["worker-pdf", "worker-email"]
        .iter()
        .flat_map(|w| strings(&service(&doc, w)["command"]))
        .collect();
    assert!(queues.iter().any(|q| q.contains("maintenance")));
    assert!(queues.iter().any(|q| q.contains("email")) && queues.iter().any(|q| q.contains("pdf")));
}

#[test]
fn environment_names_are_the_ones_the_code_reads() {
    let doc = compose();
    let known: BTreeSet<String> = pique_core::config::env::ALL
        .iter()
        .map(|s| s.to_string())
        .chain(["RUST_LOG".to_string()])
        .collect();
    for s in ["api", "seed", "worker-pdf", "worker-email"] {
        let keys = env_keys(service(&doc, s));
        assert!(
            keys.contains("DATABASE_URL") && keys.contains("REDIS_URL"),
            "{s}"
        );
        let unknown: Vec<_> = keys.difference(&known).collect();
        assert!(
            unknown.is_empty(),
            "{s} sets variables nothing reads: {unknown:?}"
        );
    }
    // stripe-sim's variables are its clap arguments' env names.
    let sim_env: BTreeSet<String> = stripe_sim::SimArgs::augment_args(clap::Command::new("sim"))
        .get_arguments()
        .filter_map(|a| a.get_env().and_then(|e| e.to_str()).map(String::from))
        .collect();
    let keys = env_keys(service(&doc, "stripe-sim"));
    let unknown: Vec<_> = keys.difference(&sim_env).collect();
    assert!(
        unknown.is_empty(),
        "stripe-sim sets variables it does not read: {unknown:?}"
    );
    // The API reaches the sim where the sim listens, and the sim posts webhooks to the API's route.
    let api_env = &service(&doc, "api")["environment"];
    assert_eq!(api_env["STRIPE_API_BASE"], "http://stripe-sim:12111");
    assert!(
        service(&doc, "stripe-sim")["environment"]["STRIPE_SIM_BIND"]
            .as_str()
            .is_some_and(|b| b.ends_with(":12111"))
    );
    assert_eq!(
        service(&doc, "stripe-sim")["environment"]["STRIPE_WEBHOOK_URL"],
        "http://api:8080/stripe/webhook/"
    );
    assert_eq!(
        service(&doc, "stripe-sim")["environment"]["STRIPE_WEBHOOK_SECRET"],
        api_env["STRIPE_WEBHOOK_SECRET"],
        "signatures must verify"
    );
    // The compose values agree with the code's defaults where they should.
    assert!(pique_core::config::defaults::STRIPE_API_BASE.ends_with(":12111"));
    assert_eq!(
        api_env["STRIPE_SECRET_KEY"],
        pique_core::config::defaults::STRIPE_SECRET_KEY
    );
}

/// Where a service serves `/metrics`: the API's port, a worker's `--metrics-bind`, the load
/// generator's `--prometheus-listen` (flag or environment).
fn metrics_port(doc: &Value, name: &str) -> Option<String> {
    let s = service(doc, name);
    let args: Vec<String> = strings(&s["entrypoint"])
        .into_iter()
        .chain(strings(&s["command"]))
        .collect();
    let flag = args
        .windows(2)
        .find(|w| w[0] == "--metrics-bind" || w[0] == "--prometheus-listen")
        .map(|w| w[1].clone())
        .or_else(|| {
            s["environment"]["PIQUE_LOAD_PROMETHEUS_LISTEN"]
                .as_str()
                .map(String::from)
        });
    match (name, flag) {
        ("api", _) => Some("8080".into()),
        (_, Some(bind)) => bind.rsplit(':').next().map(String::from),
        _ => None,
    }
}

#[test]
fn prometheus_scrapes_every_process_where_it_serves_metrics_and_grafana_reads_it() {
    let doc = compose();
    let prom = service(&doc, "prometheus");
    let mounts = strings(&prom["volumes"]);
    assert!(
        mounts.contains(
            &"./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro".to_string()
        ),
        "{mounts:?}"
    );
    let config: Value = serde_yaml::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/prometheus/prometheus.yml"
        ))
        .expect("prometheus.yml"),
    )
    .expect("parses");
    let mut scraped = BTreeSet::new();
    for job in config["scrape_configs"].as_sequence().expect("jobs") {
        for target in job["static_configs"][0]["targets"]
            .as_sequence()
            .expect("targets")
        {
            let target = target.as_str().expect("host:port");
            let (host, port) = target.split_once(':').expect("host:port");
            assert_eq!(
                metrics_port(&doc, host).as_deref(),
                Some(port),
                "{target}: {host} serves no /metrics on {port}"
            );
            scraped.insert(host.to_string());
        }
    }
    for s in ["api", "worker-pdf", "worker-email", "load-ui", "load"] {
        assert!(scraped.contains(s), "{s} is not scraped");
    }
    let grafana = service(&doc, "grafana");
    let mounts = strings(&grafana["volumes"]);
    for (host, inside) in [
        ("./deploy/grafana/provisioning", "/etc/grafana/provisioning"),
        ("./deploy/grafana/dashboards", "/var/lib/grafana/dashboards"),
    ] {
        assert!(
            mounts.contains(&format!("{host}:{inside}:ro")),
            "{mounts:?}"
        );
        assert!(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(host)
                .is_dir(),
            "{host}"
        );
    }
    let provider: Value = serde_yaml::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/grafana/provisioning/dashboards/pique.yml"
        ))
        .expect("provider"),
    )
    .expect("parses");
    assert_eq!(
        provider["providers"][0]["options"]["path"],
        "/var/lib/grafana/dashboards"
    );
    assert!(
        strings(&service(&doc, "load-ui")["ports"]).contains(&"8089:8089".to_string()),
        "the load UI on Locust's port"
    );
}

#[test]
fn every_command_is_accepted_by_the_binary() {
    let doc = compose();
    for s in [
        "seed",
        "stripe-sim",
        "api",
        "worker-pdf",
        "worker-email",
        "load-ui",
        "loadgen",
        "loadgen-worker",
    ] {
        let mut args: Vec<String> = strings(&service(&doc, s)["entrypoint"])
            .into_iter()
            .skip(1) // the binary itself
            .collect();
        args.extend(strings(&service(&doc, s)["command"]));
        args.push("--help".into());
        let out = Command::new(env!("CARGO_BIN_EXE_pique"))
            .args(&args)
            .output()
            .expect("run pique");
        assert!(
            out.status.success(),
            "{s}: pique {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn dockerfile_builds_the_binary_and_serves_on_8080() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile"))
        .expect("read Dockerfile");
    for needle in [
        "cargo build --release --locked --bin pique",
        "COPY migrations migrations", // embedded by sqlx::migrate! at compile time
        "COPY .sqlx .sqlx",           // the query data the SQL is checked against offline
        "COPY .cargo .cargo",         // which sets SQLX_OFFLINE
        "COPY loadtests",
        "COPY profiles profiles", // embedded by include_str! at compile time
        "EXPOSE 8080",
        "ENTRYPOINT [\"pique\"]",
        "/health/",
    ] {
        assert!(text.contains(needle), "Dockerfile lacks {needle:?}");
    }
    let compose = compose();
    assert_eq!(compose["x-pique"]["build"], ".");
}

/// Long flags (`--name`) and environment names a clap definition accepts.
fn clap_names(cmd: &clap::Command) -> (BTreeSet<String>, BTreeSet<String>) {
    let longs = cmd
        .get_arguments()
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect();
    let envs = cmd
        .get_arguments()
        .filter_map(|a| a.get_env().and_then(|e| e.to_str()).map(String::from))
        .collect();
    (longs, envs)
}

/// Every `--flag` of `args` is one the definition of `pique load SUB` has, and the binary
/// accepts `pique load SUB args`.
fn check_load_args(what: &str, cmd: &clap::Command, argv: &[String]) {
    let (longs, _) = clap_names(cmd);
    for a in argv.iter().filter(|a| a.starts_with("--")) {
        let flag = a.split('=').next().unwrap_or(a);
        assert!(
            longs.contains(flag),
            "{what}: `{flag}` is not a flag of {}",
            cmd.get_name()
        );
    }
    let mut line = vec!["load".to_string(), cmd.get_name().to_string()];
    line.extend(argv.iter().cloned());
    line.push("--help".into());
    let out = Command::new(env!("CARGO_BIN_EXE_pique"))
        .args(&line)
        .output()
        .expect("run pique");
    assert!(
        out.status.success(),
        "{what}: pique {line:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn worker_cli() -> clap::Command {
    pique_load::WorkerArgs::augment_args(clap::Command::new("worker"))
}

fn run_cli() -> clap::Command {
    pique_load::RunCommand::augment_args(clap::Command::new("run"))
}

fn flag_value(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1).cloned())
}

#[test]
fn distributed_load_services_scale_and_pass_only_flags_the_cli_has() {
    let doc = compose();
    let worker = service(&doc, "loadgen-worker");
    let master = service(&doc, "loadgen");
    // `--scale loadgen-worker=N` needs no fixed host port and no fixed container name.
    assert!(worker.get("ports").is_none() && worker.get("container_name").is_none());
    assert_eq!(strings(&worker["entrypoint"]), vec!["pique", "load"]);
    assert_eq!(strings(&master["entrypoint"]), vec!["pique", "load"]);
    let wargs = strings(&worker["command"]);
    let margs = strings(&master["command"]);
    assert_eq!(wargs[0], "worker");
    assert_eq!(margs[0], "run");
    check_load_args("loadgen-worker", &worker_cli(), &wargs[1..]);
    check_load_args("loadgen", &run_cli(), &margs[1..]);
    // Master and workers meet on the same Redis under the same cluster name.
    for flag in ["--redis-url", "--cluster"] {
        assert_eq!(flag_value(&wargs, flag), flag_value(&margs, flag), "{flag}");
        assert!(flag_value(&wargs, flag).is_some(), "{flag}");
    }
    assert_eq!(
        flag_value(&wargs, "--redis-url").as_deref(),
        Some("redis://redis:6379/0")
    );
    // The number of workers comes from the environment the CLI reads.
    let (_, envs) = clap_names(&run_cli());
    for k in env_keys(master)
        .iter()
        .filter(|k| k.starts_with("PIQUE_LOAD_"))
    {
        assert!(
            envs.contains(k),
            "loadgen sets {k}, which the CLI does not read"
        );
    }
    assert!(env_keys(master).contains("PIQUE_LOAD_WORKERS"));
    assert_eq!(
        worker["depends_on"]["redis"]["condition"],
        "service_healthy"
    );
}

fn k8s(file: &str) -> Vec<Value> {
    let path = format!("{}/deploy/k8s/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).expect("manifest parses"))
        .collect()
}

#[test]
fn kubernetes_manifests_run_the_master_as_a_job_and_workers_as_a_deployment() {
    let find = |docs: &[Value], kind: &str| -> Value {
        docs.iter()
            .find(|d| d["kind"] == kind)
            .cloned()
            .unwrap_or_else(|| panic!("no {kind}"))
    };
    let workers = find(&k8s("loadgen-worker.yaml"), "Deployment");
    let master_docs = k8s("loadgen-master.yaml");
    let job = find(&master_docs, "Job");
    let wc = &workers["spec"]["template"]["spec"]["containers"][0];
    let mc = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(strings(&wc["command"]), vec!["pique", "load", "worker"]);
    assert_eq!(strings(&mc["command"]), vec!["pique", "load", "run"]);
    let mut wline = vec!["load".to_string(), "worker".to_string()];
    wline.extend(strings(&wc["args"]));
    let mut mline = vec!["load".to_string(), "run".to_string()];
    mline.extend(strings(&mc["args"]));
    check_load_args("k8s worker", &worker_cli(), &wline[2..]);
    check_load_args("k8s master", &run_cli(), &mline[2..]);
    for flag in ["--redis-url", "--cluster"] {
        assert_eq!(flag_value(&wline, flag), flag_value(&mline, flag), "{flag}");
    }
    let workers_wanted: u64 = flag_value(&mline, "--workers")
        .and_then(|n| n.parse().ok())
        .expect("--workers N");
    assert_eq!(workers["spec"]["replicas"].as_u64(), Some(workers_wanted));
    // Environment the worker container sets is read by the worker's CLI.
    let (_, envs) = clap_names(&worker_cli());
    for e in wc["env"].as_sequence().expect("env") {
        let name = e["name"].as_str().expect("name");
        assert!(
            name == "RUST_LOG" || envs.contains(name),
            "the worker does not read {name}"
        );
    }
    assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Never");
    // The runs volume the Job mounts is declared next to it.
    let claim =
        &job["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"];
    let pvc = find(&master_docs, "PersistentVolumeClaim");
    assert_eq!(&pvc["metadata"]["name"], claim);
    assert_eq!(flag_value(&mline, "--out").as_deref(), Some("/app/runs"));
    assert_eq!(
        mc["volumeMounts"][0]["mountPath"].as_str(),
        Some("/app/runs")
    );
}
