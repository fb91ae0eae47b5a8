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
        "lb",
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
        "lb",
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
        strings(&service(&doc, "lb")["ports"])
            .first()
            .map(String::as_str),
        Some("8080:8080"),
        "the port the seed's clients use, on the balancer"
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
        "http://lb:8080/stripe/webhook/",
        "webhooks go through the balancer to any healthy replica"
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
        ("lb", _) => haproxy_metrics_port(&haproxy()),
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
        let statics = job["static_configs"]
            .as_sequence()
            .into_iter()
            .flatten()
            .flat_map(|c| strings(&c["targets"]));
        // Replicas found by Docker's DNS: each name is a service, with one port for all.
        let discovered = job["dns_sd_configs"]
            .as_sequence()
            .into_iter()
            .flatten()
            .flat_map(|c| {
                assert_eq!(c["type"], "A", "compose DNS answers A records");
                let port = c["port"].as_u64().expect("port");
                strings(&c["names"])
                    .into_iter()
                    .map(move |n| format!("{n}:{port}"))
            });
        for target in statics.chain(discovered) {
            let (host, port) = target.split_once(':').expect("host:port");
            assert_eq!(
                metrics_port(&doc, host).as_deref(),
                Some(port),
                "{target}: {host} serves no /metrics on {port}"
            );
            scraped.insert(host.to_string());
        }
    }
    for s in ["api", "lb", "worker-pdf", "worker-email", "load-ui", "load"] {
        assert!(scraped.contains(s), "{s} is not scraped");
    }
    // Every API replica is its own target, not whichever one the balancer picks.
    let api_job = config["scrape_configs"]
        .as_sequence()
        .expect("jobs")
        .iter()
        .find(|j| j["job_name"] == "api")
        .expect("api job");
    assert_eq!(strings(&api_job["dns_sd_configs"][0]["names"]), ["api"]);
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
/// `deploy/haproxy/haproxy.cfg` as sections (`backend api`, `resolvers docker` ...), each with
/// its directives split into words, comments dropped.
fn haproxy() -> Vec<(String, Vec<Vec<String>>)> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/haproxy/haproxy.cfg"
    ))
    .expect("haproxy.cfg");
    let mut sections: Vec<(String, Vec<Vec<String>>)> = Vec::new();
    for line in text.lines() {
        let content = line.split('#').next().unwrap_or("");
        if content.trim().is_empty() {
            continue;
        }
        let words: Vec<String> = content.split_whitespace().map(String::from).collect();
        if !line.starts_with(char::is_whitespace) {
            sections.push((words.join(" "), Vec::new()));
        } else {
            sections
                .last_mut()
                .expect("a directive inside a section")
                .1
                .push(words);
        }
    }
    sections
}

fn section<'a>(cfg: &'a [(String, Vec<Vec<String>>)], name: &str) -> &'a [Vec<String>] {
    cfg.iter()
        .find(|(n, _)| n == name)
        .map(|(_, d)| d.as_slice())
        .unwrap_or_else(|| panic!("haproxy.cfg has no `{name}` section"))
}

fn directive<'a>(lines: &'a [Vec<String>], words: &[&str]) -> Option<&'a Vec<String>> {
    lines
        .iter()
        .find(|l| l.len() >= words.len() && l.iter().zip(words).all(|(a, b)| a == b))
}

/// The port of the frontend that serves HAProxy's Prometheus exporter.
fn haproxy_metrics_port(cfg: &[(String, Vec<Vec<String>>)]) -> Option<String> {
    cfg.iter()
        .filter(|(n, _)| n.starts_with("frontend "))
        .find(|(_, d)| {
            directive(d, &["http-request", "use-service", "prometheus-exporter"]).is_some()
        })
        .and_then(|(_, d)| directive(d, &["bind"]))
        .and_then(|b| b[1].rsplit(':').next().map(String::from))
}

#[test]
fn api_replicas_scale_behind_a_health_checked_haproxy() {
    let doc = compose();
    let api = service(&doc, "api");
    // `--scale api=N` needs replicas that do not collide: no fixed name, no host port.
    assert!(
        api.get("container_name").is_none(),
        "api has a container_name"
    );
    for port in strings(&api["ports"]) {
        assert!(
            !port.contains(':'),
            "api publishes host port {port}: a second replica could not start"
        );
    }
    let listen = pique_core::config::defaults::BIND
        .rsplit(':')
        .next()
        .expect("port");
    assert!(strings(&api["expose"]).contains(&listen.to_string()));
    assert!(
        strings(&api["healthcheck"]["test"])
            .iter()
            .any(|a| a.ends_with(&format!(":{listen}/health/"))),
        "the replica's own health check"
    );

    let lb = service(&doc, "lb");
    assert!(
        lb["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("haproxy:")),
        "{:?}",
        lb["image"]
    );
    assert!(strings(&lb["volumes"]).contains(
        &"./deploy/haproxy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro".to_string()
    ));
    assert_eq!(lb["depends_on"]["api"]["condition"], "service_healthy");

    let cfg = haproxy();
    // Docker's embedded DNS, which answers a scaled service with every replica's address.
    let resolvers = section(&cfg, "resolvers docker");
    assert_eq!(
        directive(resolvers, &["nameserver"]).map(|d| d[2].as_str()),
        Some("127.0.0.11:53")
    );
    // Clients' port: the frontend bound where the compose file publishes the balancer.
    let published: Vec<String> = strings(&lb["ports"])
        .iter()
        .filter_map(|p| p.split_once(':').map(|(_, inside)| inside.to_string()))
        .collect();
    let (_, frontend) = cfg
        .iter()
        .find(|(n, d)| {
            n.starts_with("frontend ")
                && directive(d, &["bind"]).is_some_and(|b| b[1] == format!(":{listen}"))
        })
        .expect("a frontend on the API's port");
    assert!(published.contains(&listen.to_string()), "{published:?}");
    let backend = directive(frontend, &["default_backend"]).expect("default_backend")[1].clone();
    for name in std::iter::once(backend.clone()).chain(
        frontend
            .iter()
            .filter(|d| d[0] == "use_backend")
            .map(|d| d[1].clone()),
    ) {
        let lines = section(&cfg, &format!("backend {name}"));
        // Replicas by DNS, re-resolved, on the port they listen on, each health-checked.
        let template = directive(lines, &["server-template"])
            .unwrap_or_else(|| panic!("backend {name}: no server-template"));
        let slots: u32 = template[2].parse().expect("slot count");
        assert!(slots >= 2, "backend {name}: room for several replicas");
        assert_eq!(template[3], format!("api:{listen}"), "backend {name}");
        let rest = template[4..].join(" ");
        for option in ["check", "resolvers docker", "init-addr none"] {
            assert!(rest.contains(option), "backend {name}: {option}");
        }
        assert!(directive(lines, &["option", "httpchk"]).is_some(), "{name}");
        assert!(
            directive(
                lines,
                &["http-check", "send", "meth", "GET", "uri", "/health/"]
            )
            .is_some(),
            "backend {name} checks /health/"
        );
        assert!(
            directive(lines, &["http-check", "expect", "status", "200"]).is_some(),
            "{name}"
        );
    }
    assert!(
        published.contains(&haproxy_metrics_port(&cfg).expect("exporter port")),
        "HAProxy's stats and metrics are published"
    );

    // PostgreSQL has a connection for every pool: each replica slot of the balancer and each
    // worker opens up to its PIQUE_DB_MAX_CONNECTIONS, plus a margin for the seed, the load
    // generator's sampling and psql.
    let pool_of = |name: &str| -> u32 {
        let env = &service(&doc, name)["environment"];
        pique_core::Config::from_lookup(|k| env[k].as_str().map(String::from))
            .expect("compose environment parses")
            .pg
            .max_connections
    };
    let slots: u32 = directive(
        section(&cfg, &format!("backend {backend}")),
        &["server-template"],
    )
    .expect("server-template")[2]
        .parse()
        .expect("slots");
    let needed = slots * pool_of("api") + pool_of("worker-pdf") + pool_of("worker-email") + 10;
    let postgres = strings(&service(&doc, "postgres")["command"]);
    let max_connections: u32 = postgres
        .windows(2)
        .find_map(|w| {
            (w[0] == "-c")
                .then(|| w[1].strip_prefix("max_connections="))
                .flatten()
        })
        .expect("postgres sets max_connections")
        .parse()
        .expect("number");
    assert!(
        max_connections >= needed,
        "max_connections {max_connections} < {needed} ({slots} replicas, 2 workers, margin)"
    );

    // Nothing talks to a single replica by name any more: clients go through the balancer.
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docker-compose.yml"))
        .expect("read compose");
    assert!(!text.contains("//api:"), "a client bypasses the balancer");
    let ui = strings(&service(&doc, "load-ui")["command"]);
    assert!(
        ui.windows(2)
            .any(|w| w[0] == "--host" && w[1] == format!("http://lb:{listen}")),
        "{ui:?}"
    );
    assert_eq!(
        service(&doc, "load-ui")["depends_on"]["lb"]["condition"],
        "service_healthy"
    );
}
