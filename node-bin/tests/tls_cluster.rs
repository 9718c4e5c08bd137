//! Issue 16, acceptance 1 and 5, on real `raft-node` processes with TLS on: a 3-node cluster
//! elects, serves https writes (through a follower too, forwarded over TLS) and linearizable
//! reads; a plaintext client, a client without a certificate and one with another CA's
//! certificate are refused; a peer with another CA's certificate is refused in the TLS
//! handshake, and one whose certificate names another node than it claims is refused by the
//! connection handshake; a bad `[tls]` configuration exits 2 naming the key and the problem.

#[path = "support/ports.rs"]
mod ports;
#[path = "support/secure_cluster.rs"]
mod secure_cluster;

use network_actor::frame::append_frame;
use network_actor::handshake::{Handshake, HandshakeReply, MAX_HANDSHAKE_BYTES, PROTOCOL_VERSION};
use node_bin::security::cert_gen::{client_spec, node_spec, CertSpec, GeneratedCa};
use node_bin::security::tls_files::client_config;
use raft_types::NodeId;
use rustls::pki_types::pem::PemObject;
use secure_cluster::{exclusive, write_file, Options, SecureCluster, PATIENCE, RAFT_NODE};
use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use test_support::wait::poll_real_time;

fn loopback() -> IpAddr {
    "127.0.0.1".parse().expect("literal")
}

/// A reqwest client trusting `ca_file` and presenting `identity` (cert, key) if given.
fn https_client(ca_file: &Path, identity: Option<(&Path, &Path)>) -> reqwest::blocking::Client {
    let config = client_config(ca_file, identity).expect("client TLS config");
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .use_preconfigured_tls(config)
        .build()
        .expect("client")
}

#[test]
fn a_tls_cluster_elects_serves_https_and_refuses_unverified_clients() {
    let _exclusive = exclusive();
    let root = tempfile::tempdir().expect("temp dir");
    let mut cluster = SecureCluster::configure(
        root.path(),
        "tls-cluster",
        Options {
            tls: true,
            ..Options::default()
        },
    );
    cluster.start();
    let leader = cluster.wait_for_leader(None);
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    let http = cluster.http();

    // Writes over https, to the leader and to a follower (forwarded over TLS).
    for (id, key) in [(leader, "at-leader"), (follower, "at-follower")] {
        let response = http
            .put(format!("{}/v1/kv/{key}", cluster.url(id)))
            .body(format!("value-{id}"))
            .send()
            .expect("https PUT");
        assert_eq!(response.status().as_u16(), 200, "PUT {key} to node {id}");
    }
    // Linearizable reads from every node see both writes.
    for id in 1..=3 {
        for (writer, key) in [(leader, "at-leader"), (follower, "at-follower")] {
            let response = http
                .get(format!("{}/v1/kv/{key}", cluster.url(id)))
                .send()
                .expect("https GET");
            assert_eq!(response.status().as_u16(), 200, "GET {key} from node {id}");
            assert_eq!(response.text().expect("body"), format!("value-{writer}"));
        }
    }
    // RaftClient (raftctl's client) over TLS.
    let client = cluster.client(None);
    client
        .put("via-client", b"1")
        .expect("put through RaftClient");
    assert_eq!(client.get("via-client", false).expect("get").body, b"1");

    let files = cluster.client_files.as_ref().expect("TLS files");
    let url = cluster.url(leader);
    // A plaintext client.
    let plain = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let plain_url = url.replace("https://", "http://");
    assert!(
        plain.get(format!("{plain_url}/health")).send().is_err(),
        "plaintext is refused"
    );
    // A client presenting no certificate.
    let anonymous = https_client(&files.ca_file, None);
    let refused = anonymous.get(format!("{url}/v1/kv/at-leader")).send();
    assert!(refused.is_err(), "no client certificate: {refused:?}");
    // A client presenting another CA's certificate.
    let other_ca = GeneratedCa::new("another CA").expect("CA");
    let issued = other_ca
        .issue(&client_spec("stranger"))
        .expect("certificate");
    let cert = write_file(root.path(), "stranger.pem", &issued.certificate);
    let key = write_file(root.path(), "stranger.key", &issued.key);
    let stranger = https_client(&files.ca_file, Some((&cert, &key)));
    let refused = stranger.get(format!("{url}/v1/kv/at-leader")).send();
    assert!(
        refused.is_err(),
        "another CA's client certificate: {refused:?}"
    );
    // The cluster still serves the proper client afterwards.
    assert_eq!(
        client.get("at-leader", false).expect("get").body,
        format!("value-{leader}").as_bytes()
    );
}

/// Speaks the peer protocol to `address` over TLS as node `claimed`: the handshake's reply,
/// or the error that ended the attempt (a TLS alert).
fn peer_handshake(
    address: &str,
    config: rustls::ClientConfig,
    cluster_id: &str,
    claimed: u64,
) -> Result<HandshakeReply, String> {
    let tcp = TcpStream::connect(address).map_err(|error| error.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let name = rustls::pki_types::ServerName::IpAddress(loopback().into());
    let connection =
        rustls::ClientConnection::new(Arc::new(config), name).map_err(|error| error.to_string())?;
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    let mut frame = Vec::new();
    let handshake = Handshake {
        protocol_version: PROTOCOL_VERSION,
        cluster_id: cluster_id.to_string(),
        node_id: NodeId(claimed),
    };
    append_frame(&mut frame, &handshake, MAX_HANDSHAKE_BYTES).expect("frame");
    stream
        .write_all(&frame)
        .map_err(|error| error.to_string())?;
    stream.flush().map_err(|error| error.to_string())?;
    let mut prefix = [0u8; 4];
    stream
        .read_exact(&mut prefix)
        .map_err(|error| error.to_string())?;
    let mut payload = vec![0u8; u32::from_be_bytes(prefix) as usize];
    stream
        .read_exact(&mut payload)
        .map_err(|error| error.to_string())?;
    raft_types::codec::decode(&payload).map_err(|error| error.to_string())
}

#[test]
fn a_peer_from_another_ca_or_claiming_another_id_is_refused_at_the_handshake() {
    let _exclusive = exclusive();
    let root = tempfile::tempdir().expect("temp dir");
    let name = "tls-peers";
    let mut cluster = SecureCluster::configure(
        root.path(),
        name,
        Options {
            tls: true,
            ..Options::default()
        },
    );
    // Node 3 runs with a certificate of another CA (and trusts that CA, so it starts).
    let other_ca = GeneratedCa::new("another CA").expect("CA");
    let issued = other_ca
        .issue(&node_spec(name, 3, &[loopback()]))
        .expect("certificate");
    let directory = cluster.directory.clone();
    let other_ca_file = write_file(&directory, "other-ca.pem", &other_ca.certificate_pem());
    let cert = write_file(&directory, "other-node-3.pem", &issued.certificate);
    let key = write_file(&directory, "other-node-3.key", &issued.key);
    let config = &mut cluster.configs[2];
    config.tls.ca_file = Some(other_ca_file.display().to_string());
    config.tls.cert_file = Some(cert.display().to_string());
    config.tls.key_file = Some(key.display().to_string());
    std::fs::write(
        &cluster.config_paths[2],
        node_bin::node_config::to_toml(config),
    )
    .expect("config");
    cluster.start();
    let leader = cluster.wait_for_leader(None);
    assert_ne!(leader, 3, "node 3 cannot be elected: nobody hears it");
    let client = node_bin::raft_client::RaftClient::secured(
        &cluster.urls()[..2],
        Duration::from_secs(10),
        Duration::from_secs(30),
        cluster.client_security(None),
    );
    client
        .put("k", b"v")
        .expect("nodes 1 and 2 commit without node 3");
    let refusal = poll_real_time(PATIENCE, || {
        let logs = cluster.logs();
        logs.contains("refused inbound connection: TLS handshake failed")
            .then_some(())
    });
    if refusal.is_none() {
        cluster.print_logs();
        panic!("no node logged the TLS refusal of node 3");
    }
    let node_1_log = std::fs::read_to_string(cluster.log_path(1)).unwrap_or_default();
    assert!(
        !node_1_log.contains("accepted connection from peer peer=3"),
        "node 3 got in"
    );

    // Node 3's id claimed over a certificate of the right CA that names node 1: refused by
    // the connection handshake, which names the problem.
    let ca = cluster.ca.as_ref().expect("CA");
    let names_1 = ca
        .issue(&node_spec(name, 1, &[loopback()]))
        .expect("certificate");
    let cert = write_file(&directory, "names-1.pem", &names_1.certificate);
    let key = write_file(&directory, "names-1.key", &names_1.key);
    let ca_file = cluster.client_files.as_ref().expect("TLS").ca_file.clone();
    let target = cluster.members[1].peer_addr.clone();
    let config = client_config(&ca_file, Some((&cert, &key))).expect("config");
    match peer_handshake(&target, config, name, 3) {
        Ok(HandshakeReply::Refused { reason }) => {
            assert!(
                reason.contains(&format!("does not name raft://{name}/node/3")),
                "{reason}"
            )
        }
        other => panic!("claiming node 3 with node 1's certificate: {other:?}"),
    }
    // Another CA's certificate, speaking to node 2 directly: the TLS handshake fails.
    let stranger = other_ca
        .issue(&node_spec(name, 3, &[loopback()]))
        .expect("certificate");
    let cert = write_file(&directory, "stranger-3.pem", &stranger.certificate);
    let key = write_file(&directory, "stranger-3.key", &stranger.key);
    let config = client_config(&ca_file, Some((&cert, &key))).expect("config");
    let outcome = peer_handshake(&target, config, name, 3);
    assert!(outcome.is_err(), "another CA's certificate: {outcome:?}");
    // And the control: a certificate naming node 3 from the right CA is accepted.
    let proper = ca
        .issue(&node_spec(name, 3, &[loopback()]))
        .expect("certificate");
    let cert = write_file(&directory, "proper-3.pem", &proper.certificate);
    let key = write_file(&directory, "proper-3.key", &proper.key);
    let config = client_config(&ca_file, Some((&cert, &key))).expect("config");
    assert!(matches!(
        peer_handshake(&target, config, name, 3),
        Ok(HandshakeReply::Accepted(_))
    ));
}

/// Runs `raft-node --config FILE` and returns its exit code and standard error.
fn run_node(config: &Path) -> (i32, String) {
    let output = Command::new(RAFT_NODE)
        .arg("--config")
        .arg(config)
        .output()
        .expect("run raft-node");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn bad_tls_configuration_exits_2_naming_the_key_and_the_problem() {
    let root = tempfile::tempdir().expect("temp dir");
    let directory = root.path();
    let cluster_id = "bad-tls";
    let ca = GeneratedCa::new("test CA").expect("CA");
    let ca_file = write_file(directory, "ca.pem", &ca.certificate_pem());
    let issue = |file: &str, spec: CertSpec| {
        let issued = ca.issue(&spec).expect("certificate");
        (
            write_file(directory, &format!("{file}.pem"), &issued.certificate),
            write_file(directory, &format!("{file}.key"), &issued.key),
        )
    };
    let node = || node_spec(cluster_id, 1, &[loopback()]);
    let (good_cert, good_key) = issue("good", node());
    let (expired, expired_key) = issue(
        "expired",
        CertSpec {
            not_before: Some((2019, 1, 1)),
            not_after: Some((2020, 1, 1)),
            ..node()
        },
    );
    let (future, future_key) = issue(
        "future",
        CertSpec {
            not_before: Some((2090, 1, 1)),
            not_after: Some((2091, 1, 1)),
            ..node()
        },
    );
    let (names_2, names_2_key) = issue("names-2", node_spec(cluster_id, 2, &[loopback()]));
    let (_, other_key) = issue("other", node());
    let other_ca = GeneratedCa::new("another CA").expect("CA");
    let foreign = other_ca.issue(&node()).expect("certificate");
    let foreign_cert = write_file(directory, "foreign.pem", &foreign.certificate);
    let foreign_key = write_file(directory, "foreign.key", &foreign.key);
    let tokens = write_file(directory, "tokens", "admin s3cr3t-token\n");
    let missing = directory.join("missing.pem");
    let path = |p: &Path| format!("{:?}", p.display().to_string());
    let tls = |ca: &Path, cert: &Path, key: &Path| {
        format!(
            "[tls]\nca_file = {}\ncert_file = {}\nkey_file = {}\n",
            path(ca),
            path(cert),
            path(key)
        )
    };
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "unreadable CA",
            tls(&missing, &good_cert, &good_key),
            "tls.ca_file",
            "cannot read",
        ),
        (
            "unreadable key",
            tls(&ca_file, &good_cert, &missing),
            "tls.key_file",
            "cannot read",
        ),
        (
            "expired",
            tls(&ca_file, &expired, &expired_key),
            "tls.cert_file",
            "expired",
        ),
        (
            "not yet valid",
            tls(&ca_file, &future, &future_key),
            "tls.cert_file",
            "not valid yet",
        ),
        (
            "key of another certificate",
            tls(&ca_file, &good_cert, &other_key),
            "tls.key_file",
            "does not match",
        ),
        (
            "names another node",
            tls(&ca_file, &names_2, &names_2_key),
            "tls.cert_file",
            "does not name this node",
        ),
        (
            "another CA",
            tls(&ca_file, &foreign_cert, &foreign_key),
            "tls.cert_file",
            "not accepted under tls.ca_file",
        ),
        (
            "a key file that is a certificate",
            tls(&ca_file, &good_cert, &good_cert),
            "tls.key_file",
            "no usable PEM private key",
        ),
        (
            "half a section",
            format!("[tls]\nca_file = {}\n", path(&ca_file)),
            "tls.cert_file",
            "must be set",
        ),
        (
            "bad tokens file",
            format!("[auth]\ntokens_file = {}\n", path(&tokens)),
            "auth.tokens_file",
            "role must be rw or ro",
        ),
        (
            "a client API certificate of another CA",
            format!(
                "{}client_cert_file = {}\nclient_key_file = {}\n",
                tls(&ca_file, &good_cert, &good_key),
                path(&foreign_cert),
                path(&foreign_key)
            ),
            "tls.client_cert_file",
            "not accepted under tls.ca_file",
        ),
        (
            "a client API certificate without its key",
            format!(
                "{}client_cert_file = {}\n",
                tls(&ca_file, &good_cert, &good_key),
                path(&foreign_cert)
            ),
            "tls.client_key_file",
            "must be set together",
        ),
    ];
    for (case, section, key, problem) in cases {
        let data_dir = directory.join(format!("data-{}", case.replace(' ', "-")));
        let config = format!(
            "id = 1\ncluster_id = {cluster_id:?}\ndata_dir = {}\npeer_addr = {:?}\nclient_addr = {:?}\n{section}",
            path(&data_dir),
            ports::free_address(),
            ports::free_address(),
        );
        let file = write_file(directory, "node.toml", &config);
        let (code, stderr) = run_node(&file);
        assert_eq!(code, 2, "{case}: {stderr}");
        let line = stderr
            .lines()
            .find(|line| line.contains("invalid configuration"))
            .unwrap_or_else(|| panic!("{case}: no configuration error in {stderr}"));
        assert!(
            line.contains(&format!("invalid configuration: {key}: ")),
            "{case}: {line}"
        );
        assert!(line.contains(problem), "{case}: {line}");
        assert!(
            !stderr.contains("s3cr3t-token"),
            "{case}: a token was printed"
        );
        println!("{case}: {line}");
    }
}

#[test]
fn the_client_api_presents_client_cert_file_when_it_is_set() {
    let _exclusive = exclusive();
    let root = tempfile::tempdir().expect("temp dir");
    let directory = root.path();
    let cluster_id = "client-cert";
    let ca = GeneratedCa::new("test CA").expect("CA");
    let ca_file = write_file(directory, "ca.pem", &ca.certificate_pem());
    let node = ca
        .issue(&node_spec(cluster_id, 1, &[loopback()]))
        .expect("certificate");
    let api = ca
        .issue(&CertSpec {
            common_name: "client API".to_string(),
            ips: vec![loopback()],
            ..CertSpec::default()
        })
        .expect("certificate");
    let client = ca.issue(&client_spec("client")).expect("certificate");
    let files = [
        ("node.pem", &node.certificate),
        ("node.key", &node.key),
        ("api.pem", &api.certificate),
        ("api.key", &api.key),
        ("client.pem", &client.certificate),
        ("client.key", &client.key),
    ];
    for (name, contents) in files {
        write_file(directory, name, contents);
    }
    let client_addr = ports::free_address();
    let path = |name: &str| format!("{:?}", directory.join(name).display().to_string());
    let config = format!(
        "id = 1\ncluster_id = {cluster_id:?}\ndata_dir = {}\npeer_addr = {:?}\nclient_addr = {client_addr:?}\n\
         [tls]\nca_file = {}\ncert_file = {}\nkey_file = {}\nclient_cert_file = {}\nclient_key_file = {}\n",
        path("data"),
        ports::free_address(),
        path("ca.pem"),
        path("node.pem"),
        path("node.key"),
        path("api.pem"),
        path("api.key"),
    );
    let config_file = write_file(directory, "node.toml", &config);
    let mut child = Command::new(RAFT_NODE)
        .arg("--config")
        .arg(&config_file)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn raft-node");
    let client_cert = directory.join("client.pem");
    let client_key = directory.join("client.key");
    let config = client_config(&ca_file, Some((&client_cert, &client_key))).expect("config");
    // The certificate the client API presents, read from a TLS handshake with it.
    let presented = poll_real_time(PATIENCE, || {
        let tcp = TcpStream::connect(&client_addr).ok()?;
        let name = rustls::pki_types::ServerName::IpAddress(loopback().into());
        let connection = rustls::ClientConnection::new(Arc::new(config.clone()), name).ok()?;
        let mut stream = rustls::StreamOwned::new(connection, tcp);
        stream
            .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .ok()?;
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        let chain = stream.conn.peer_certificates()?.to_vec();
        answer.starts_with("HTTP/1.1 200").then_some(chain)
    });
    let _ = child.kill();
    let _ = child.wait();
    let presented = presented.expect("the client API answered /health over TLS");
    let expected =
        rustls::pki_types::CertificateDer::from_pem_slice(api.certificate.as_bytes()).expect("PEM");
    assert_eq!(
        presented[0], expected,
        "the client API presents client_cert_file"
    );
}
