//! Tests of `node_config`.

use super::*;
use std::io::Write;

fn write_file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("temp file");
    file.write_all(text.as_bytes()).expect("write config");
    file
}

fn sources(file: Option<&tempfile::NamedTempFile>) -> ConfigSources {
    ConfigSources {
        file: file.map(|file| file.path().to_path_buf()),
        ..ConfigSources::default()
    }
}

const THREE_NODES: &str = r#"
id = 2
cluster_id = "test"
data_dir = "/tmp/node-2"
peer_addr = "127.0.0.2:7001"
client_addr = "127.0.0.2:8001"

[[members]]
id = 1
peer_addr = "127.0.0.1:7001"
client_addr = "127.0.0.1:8001"

[[members]]
id = 2
peer_addr = "127.0.0.2:7001"
client_addr = "127.0.0.2:8001"

[[members]]
id = 3
peer_addr = "127.0.0.3:7001"
client_addr = "127.0.0.3:8001"

[raft]
election_timeout_min_ms = 200
"#;

#[test]
fn no_configuration_is_a_single_node_cluster_on_loopback() {
    let config = load(&ConfigSources::default()).expect("defaults are valid");
    assert_eq!(config.id, NodeId(1));
    assert_eq!(config.data_dir, PathBuf::from("./raft-data"));
    assert_eq!(config.members.len(), 1);
    assert_eq!(config.members[0].peer_addr, config.peer_addr);
    assert!(config.peer_addr.ip().is_loopback());
    assert_eq!(config.storage_engine, StorageEngine::Wal);
    assert!(config.fsync);
    assert_eq!(config.preallocate_bytes, 4 * 1024 * 1024);
    assert_eq!(config.request_timeout, Duration::from_millis(5000));
    assert_eq!(config.max_value_bytes, 1_048_576);
    let ticks = config.timing_ticks();
    assert_eq!(ticks.heartbeat_interval_ticks, 5);
    assert_eq!(ticks.election_timeout_min_ticks, 15);
    assert_eq!(ticks.election_timeout_max_ticks, 30);
}

#[test]
fn file_overrides_defaults() {
    let file = write_file(THREE_NODES);
    let config = load(&sources(Some(&file))).expect("valid");
    assert_eq!(config.id, NodeId(2));
    assert_eq!(config.cluster_id, "test");
    assert_eq!(config.members.len(), 3);
    assert_eq!(config.raft.election_timeout_min_ms, 200);
    assert_eq!(config.raft.election_timeout_max_ms, 300);
    assert_eq!(
        config.peers().map(|m| m.id).collect::<Vec<_>>(),
        vec![NodeId(1), NodeId(3)]
    );
}

#[test]
fn environment_overrides_file_and_flags_override_environment() {
    let file = write_file(THREE_NODES);
    let mut sources = sources(Some(&file));
    sources.environment = BTreeMap::from([
        ("RAFT_RAFT__TICK_INTERVAL_MS".to_string(), "20".to_string()),
        ("RAFT_STORAGE__ENGINE".to_string(), "memory".to_string()),
        ("RAFT_STORAGE__FSYNC".to_string(), "false".to_string()),
        (
            "RAFT_STORAGE__PREALLOCATE_BYTES".to_string(),
            "0".to_string(),
        ),
        ("RAFT_CLUSTER_ID".to_string(), "from-env".to_string()),
        ("RAFT_TEST_SEED".to_string(), "not a config key".to_string()),
        ("PATH".to_string(), "/bin".to_string()),
    ]);
    sources.flags = vec![("cluster_id".to_string(), "from-flag".to_string())];
    let config = load(&sources).expect("valid");
    assert_eq!(config.raft.tick_interval_ms, 20);
    assert_eq!(config.storage_engine, StorageEngine::Memory);
    assert!(!config.fsync);
    assert_eq!(config.preallocate_bytes, 0, "0 turns preallocation off");
    assert_eq!(config.cluster_id, "from-flag");
    assert_eq!(config.timing_ticks().election_timeout_min_ticks, 10);
}

fn error_key(raw: RawConfig) -> String {
    NodeConfig::from_raw(&raw).expect_err("invalid").key
}

fn three_nodes() -> RawConfig {
    let file = write_file(THREE_NODES);
    load_raw(&sources(Some(&file))).expect("valid")
}

#[test]
fn bad_values_name_their_key() {
    let mut raw = RawConfig::default();
    raw.storage.engine = "rocks".into();
    assert_eq!(error_key(raw), "storage.engine");

    let mut raw = RawConfig::default();
    raw.raft.election_timeout_min_ms = 300;
    assert_eq!(error_key(raw), "raft.election_timeout_min_ms");

    let mut raw = RawConfig::default();
    raw.raft.heartbeat_interval_ms = 150;
    assert_eq!(error_key(raw), "raft.heartbeat_interval_ms");

    let mut raw = RawConfig::default();
    raw.raft.tick_interval_ms = 0;
    assert_eq!(error_key(raw), "raft.tick_interval_ms");

    let raw = RawConfig {
        peer_addr: "localhost".into(),
        ..RawConfig::default()
    };
    assert_eq!(error_key(raw), "peer_addr");

    let raw = RawConfig {
        id: 0,
        ..RawConfig::default()
    };
    assert_eq!(error_key(raw), "id");

    let mut raw = RawConfig::default();
    raw.client.max_value_bytes = 0;
    assert_eq!(error_key(raw), "client.max_value_bytes");

    let mut raw = RawConfig::default();
    raw.storage.preallocate_bytes = 64 * 1024 * 1024 + 1;
    assert_eq!(error_key(raw), "storage.preallocate_bytes");

    let mut raw = three_nodes();
    raw.members[2].id = 1;
    assert_eq!(error_key(raw), "members[2].id");

    let mut raw = three_nodes();
    raw.members.remove(1);
    assert_eq!(error_key(raw), "members");

    let mut raw = three_nodes();
    raw.members[0].client_addr = "127.0.0.1".into();
    assert_eq!(error_key(raw), "members[0].client_addr");

    let mut raw = three_nodes();
    raw.members[2].peer_addr = "127.0.0.1:7001".into();
    assert_eq!(error_key(raw), "members[2].peer_addr");

    let mut raw = three_nodes();
    raw.peer_addr = "127.0.0.9:7001".into();
    assert_eq!(error_key(raw), "peer_addr");
}

#[test]
fn type_errors_and_unknown_keys_name_their_key() {
    let file = write_file("[raft]\ntick_interval_ms = \"fast\"\n");
    let error = load(&sources(Some(&file))).expect_err("bad type");
    assert_eq!(error.key, "raft.tick_interval_ms", "{error}");

    let file = write_file("[raft]\ntick_interval = 10\n");
    let error = load(&sources(Some(&file))).expect_err("unknown key");
    assert!(error.to_string().contains("tick_interval"), "{error}");

    let sources = ConfigSources {
        environment: BTreeMap::from([(
            "RAFT_RAFT__TICK_INTERVAL_MS".to_string(),
            "soon".to_string(),
        )]),
        ..ConfigSources::default()
    };
    let error = load(&sources).expect_err("bad env value");
    assert_eq!(error.key, "raft.tick_interval_ms", "{error}");
}

#[test]
fn missing_file_is_an_error() {
    let sources = ConfigSources {
        file: Some(PathBuf::from("/nonexistent/node.toml")),
        ..ConfigSources::default()
    };
    assert_eq!(load(&sources).expect_err("missing").key, "--config");
}

#[test]
fn rendered_toml_loads_back() {
    let raw = three_nodes();
    let file = write_file(&to_toml(&raw));
    assert_eq!(load_raw(&sources(Some(&file))).expect("valid"), raw);
}
