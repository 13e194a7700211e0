//! Nodes sharing a PostgreSQL database and a Redis: one live interview per user holds across them; signaling for
//! a session that runs on another node (a candidate's rejoin, an observer) is relayed there; the registry drops a
//! node that stops heartbeating, and its candidates join elsewhere; a stopping node leaves it at once; a Redis
//! restart loses nothing; and a node whose Redis is down keeps the rule on its own.

use candor_loadtest::{Client, Role};
use candor_signaling::ServerMessage;
use secrecy::SecretString;

use crate::helpers::{Backend, JWT_SECRET, TestApp, models_dir, service_available, spawn_app_with};
use crate::signaling::{code, next_message, socket};
use crate::{Binary, PATIENCE, events_of, eventually, metric, options, said};

const MASTER_KEY: &str = "a master key shared by every node of this test";

/// Whether the shared services are there (the test command starts them).
/// The test Redis and a key prefix of the test's own, when PostgreSQL and Redis are there to test against.
fn cluster() -> Option<(String, String)> {
    let up = service_available("CANDOR_TEST_DATABASE_URL") && service_available("CANDOR_TEST_REDIS_URL");
    up.then(|| (std::env::var("CANDOR_TEST_REDIS_URL").unwrap(), fresh_prefix()))
}

fn fresh_prefix() -> String {
    format!("candor-test-{}", uuid::Uuid::new_v4().simple())
}

/// A node on the PostgreSQL database `database` (the first node's, when given; else a fresh one) with the Redis
/// at `redis`, renewing its registry entry every second. The second node of a pair trusts `X-Forwarded-For`,
/// as one behind a proxy.
async fn node(database: Option<String>, redis: String, prefix: String) -> TestApp {
    spawn_app_with(Backend::Postgres, move |c| {
        c.trust_forwarded_for = database.is_some();
        if database.is_some() {
            c.database_url = database;
        }
        c.redis_url = Some(redis);
        c.redis_prefix = prefix;
        c.cluster_heartbeat_secs = 1;
        // One key for both, as nodes of one deployment share it (the sealed columns' key is in the database).
        c.master_key = Some(SecretString::from(MASTER_KEY));
    })
    .await
}

/// Two nodes on one database, with the Redis at `redis` and its keys under `prefix`.
async fn two_nodes(redis: &str, prefix: &str) -> (TestApp, TestApp) {
    let a = node(None, redis.to_string(), prefix.to_string()).await;
    let b = node(Some(a.state.config.database_url()), redis.to_string(), prefix.to_string()).await;
    (a, b)
}

/// The candidate types an answer to the question; the interviewer moves on.
async fn answer(client: &Client) {
    let text = "I split the nightly batch into small idempotent jobs, added retries and alerts, and failed runs fell by ninety percent.";
    client.send_event(&serde_json::json!({"v": 1, "type": "answer.text", "text": text}).to_string()).await.unwrap();
}

/// Shares `interview` with a new coach; the coach's access token (signed in through `app`).
async fn coach_of(app: &TestApp, token: &str, interview: &str) -> String {
    app.add_user("coach@example.com", candor::domain::Role::Coach).await;
    let shares = format!("/api/v1/interviews/{interview}/shares");
    assert_eq!(app.post(&shares, Some(token), serde_json::json!({"email": "coach@example.com"})).await.status, 201);
    app.login("coach@example.com").await.body["access_token"].as_str().unwrap().to_string()
}

/// An admin's access token, signed in through `app`.
async fn admin_of(app: &TestApp) -> String {
    app.add_user("root@example.com", candor::domain::Role::Admin).await;
    app.login("root@example.com").await.body["access_token"].as_str().unwrap().to_string()
}

/// The URLs of the nodes in the registry, as `app` lists them to an admin.
async fn registered(app: &TestApp, admin: &str) -> Vec<String> {
    let reply = app.get("/api/v1/admin/nodes", Some(admin)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body["nodes"].as_array().unwrap().iter().map(|n| n["url"].as_str().unwrap_or_default().to_string()).collect()
}

async fn first_question(client: &Client) {
    assert!(client.wait_until(PATIENCE, |c| !events_of(c, "interviewer.question").is_empty()).await, "{:?}", client.events());
}

#[tokio::test]
async fn one_live_interview_per_user_holds_across_nodes_sharing_redis() {
    let Some((redis, prefix)) = cluster() else { return };
    let (a, b) = two_nodes(&redis, &prefix).await;
    let (token, _) = a.signed_in_user("ada@example.com").await;
    let (first, second) = (a.create_interview(&token).await, a.create_interview(&token).await);

    let on_a = Client::connect(options(&a, &token, &first, Role::Candidate)).await.expect("joins on node A");
    first_question(&on_a).await;
    let mut ws = socket(b.addr, &second, &format!("access_token={token}")).await;
    assert_eq!(code(next_message(&mut ws).await), "session_already_live", "node B knows Ada is live on node A");

    on_a.end().await;
    // Node A gives the claim up as the session ends (in the background): wait until it has.
    let ada = a.get("/api/v1/me", Some(&token)).await.body["id"].as_str().unwrap().to_string();
    let mut conn = redis::Client::open(redis.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let mut released = false;
    for _ in 0..300 {
        let held: bool = redis::cmd("EXISTS").arg(format!("{prefix}:live:{ada}")).query_async(&mut conn).await.unwrap();
        if !held {
            released = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(released, "node A released Ada's claim");
    let on_b = Client::connect(options(&b, &token, &second, Role::Candidate)).await.ok();
    let on_b = on_b.expect("once the interview on node A ended, Ada joins another on node B");
    first_question(&on_b).await;
    on_b.end().await;
}

#[tokio::test]
async fn with_redis_down_a_node_keeps_one_live_interview_per_user_on_its_own() {
    if !service_available("CANDOR_TEST_DATABASE_URL") {
        return;
    }
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let app = node(None, format!("redis://127.0.0.1:{dead}"), "candor".into()).await;
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let (first, second) = (app.create_interview(&token).await, app.create_interview(&token).await);
    let client = Client::connect(options(&app, &token, &first, Role::Candidate)).await.expect("joins without Redis");
    first_question(&client).await;
    let mut ws = socket(app.addr, &second, &format!("access_token={token}")).await;
    assert_eq!(code(next_message(&mut ws).await), "session_already_live");
    client.end().await;
}

#[tokio::test]
async fn a_session_on_node_a_is_watched_and_rejoined_through_node_b() {
    let Some((redis, prefix)) = cluster() else { return };
    let (a, b) = two_nodes(&redis, &prefix).await;
    let (token, _) = a.signed_in_user("ada@example.com").await;
    let interview = a.create_interview(&token).await;
    let coach = coach_of(&b, &token, &interview).await;
    let mut opts = options(&a, &token, &interview, Role::Candidate);
    opts.audio = Some((crate::media::sine(440.0, 0.25, 60.0, 48_000), 48_000));
    let on_a = Client::connect(opts).await.expect("joins on node A");
    first_question(&on_a).await;

    // The coach reaches node B, which relays the signaling to node A: the media and events come from there.
    let observer = Client::connect(options(&b, &coach, &interview, Role::Observer)).await.expect("observes via B");
    assert!(observer.wait_until(PATIENCE, |c| c.is_connected()).await, "{:?}", observer.signals());
    assert_eq!(metric(&a, "candor_rtc_peers", Some(("role", "observer"))), 1.0);
    assert_eq!(metric(&b, "candor_rtc_peers", Some(("role", "observer"))), 0.0);
    let follows = |c: &Client| c.inbound().audio_packets > 50 && !events_of(c, "speech.metrics").is_empty();
    assert!(observer.wait_until(PATIENCE, follows).await, "the observer hears the candidate: {:?}", observer.inbound());

    // A reloaded page that lands on node B takes the session over on node A, where it runs.
    let rejoined = Client::connect(options(&b, &token, &interview, Role::Candidate)).await.expect("rejoins via B");
    let replaced = |c: &Client| c.signals().iter().any(|s| matches!(s, ServerMessage::Ended { reason } if reason == "replaced"));
    assert!(on_a.wait_until(PATIENCE, replaced).await, "{:?}", on_a.signals());
    let welcomed = |c: &Client| said(c).iter().any(|t| t.starts_with("Welcome back"));
    assert!(rejoined.wait_until(PATIENCE, welcomed).await, "{:?}", said(&rejoined));
    assert_eq!((a.state.live.live_sessions(), b.state.live.live_sessions()), (1, 0));
    on_a.vanish().await;

    // Node A knows the client's address from node B's signed relay header, not node B's own address.
    let url = format!("ws://{}/api/v1/interviews/{interview}/rtc?access_token={coach}&role=observer", b.addr);
    let mut request = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url).unwrap();
    request.headers_mut().insert("x-forwarded-for", "203.0.113.9".parse().unwrap());
    let (relayed, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let from_client = async || {
        let rows = a.state.store.audit_page(100, 0, Some("interview.live.observe")).await.unwrap();
        rows.iter().filter(|r| r.ip.as_deref() == Some("203.0.113.9")).count() == 2
    };
    assert!(eventually(from_client).await, "nodes B and A both audit the client's address");
    drop(relayed);

    // WHIP through node B is relayed as well: a WHIP client takes the session over, and ends it with DELETE.
    let mut whip = options(&b, &token, &interview, Role::Candidate);
    whip.whip = true;
    let over_whip = Client::connect(whip).await.expect("a WHIP offer through node B is answered by node A");
    assert!(over_whip.wait_until(PATIENCE, |c| c.is_connected()).await);
    let whip_url = format!("/api/v1/interviews/{interview}/whip");
    assert_eq!(b.request(reqwest::Method::DELETE, &whip_url, Some(&token), None).await.status, 204);
    assert!(eventually(async || a.state.live.live_sessions() == 0).await, "node A ended the session");
    rejoined.vanish().await;
    over_whip.vanish().await;
    observer.vanish().await;
}

#[tokio::test]
async fn a_node_that_stops_heartbeating_drops_out_and_its_candidate_goes_on_through_another() {
    let Some((redis, prefix)) = cluster() else { return };
    let b = node(None, redis.clone(), prefix.clone()).await;
    let admin = admin_of(&b).await;
    // Node A is the real binary on the same database, so it can die the way processes do.
    let database = b.state.config.database_url();
    let mut a = Binary::spawn(
        &models_dir(),
        &[
            ("CANDOR_DATABASE_URL", database.as_str()),
            ("CANDOR_REDIS_URL", redis.as_str()),
            ("CANDOR_REDIS_PREFIX", prefix.as_str()),
            ("CANDOR_CLUSTER_HEARTBEAT_SECS", "1"),
            ("CANDOR_JWT_SECRET", JWT_SECRET),
            ("CANDOR_MASTER_KEY", MASTER_KEY),
        ],
    )
    .await;
    let a_url = format!("http://{}", a.address);
    assert!(eventually(async || registered(&b, &admin).await.contains(&a_url)).await, "node A registered");
    assert_eq!(registered(&b, &admin).await.len(), 2);

    let (token, _) = b.signed_in_user("ada@example.com").await;
    let interview = b.create_interview(&token).await;
    let mut on_a = options(&b, &token, &interview, Role::Candidate);
    on_a.server = a.address;
    let on_a = Client::connect(on_a).await.expect("joins on node A");
    first_question(&on_a).await;
    // While node A lives, node B sends Ada there.
    let mut ws = socket(b.addr, &b.create_interview(&token).await, &format!("access_token={token}")).await;
    assert_eq!(code(next_message(&mut ws).await), "session_already_live");

    a.process.start_kill().unwrap();
    a.process.wait().await.unwrap();
    on_a.vanish().await;
    assert!(eventually(async || !registered(&b, &admin).await.contains(&a_url)).await, "node A dropped out");
    // Ada's interview goes on through node B, where it resumes where node A had stored it.
    let on_b = Client::connect(options(&b, &token, &interview, Role::Candidate)).await.expect("joins on node B");
    assert!(on_b.wait_until(PATIENCE, |c| !said(c).is_empty()).await, "{:?}", on_b.signals());
    assert_eq!(b.state.live.live_sessions(), 1);
    on_b.end().await;
}

/// A Redis server of the test's own, on `port`, that the test can stop and start again (empty, as a restarted
/// Redis without persistence is).
fn redis_server(port: u16) -> tokio::process::Child {
    tokio::process::Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server runs (the test command installs it)")
}

#[tokio::test]
async fn a_redis_restart_mid_session_loses_nothing_and_the_nodes_share_again() {
    if cluster().is_none() {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("redis://127.0.0.1:{port}");
    let mut server = redis_server(port);
    let mut conn = None;
    assert!(
        eventually(async || {
            conn = redis::Client::open(url.as_str()).unwrap().get_multiplexed_async_connection().await.ok();
            conn.is_some()
        })
        .await
    );
    let prefix = fresh_prefix();
    let (a, b) = two_nodes(&url, &prefix).await;
    let (token, _) = a.signed_in_user("ada@example.com").await;
    let interview = a.create_interview(&token).await;
    let coach = coach_of(&a, &token, &interview).await;
    let ada = a.get("/api/v1/me", Some(&token)).await.body["id"].as_str().unwrap().to_string();
    let candidate = Client::connect(options(&a, &token, &interview, Role::Candidate)).await.expect("joins on A");
    first_question(&candidate).await;

    server.kill().await.unwrap();
    // The session goes on without Redis.
    answer(&candidate).await;
    let next = |c: &Client| events_of(c, "interviewer.question").len() >= 2;
    assert!(candidate.wait_until(PATIENCE, next).await, "{:?}", said(&candidate));
    assert_eq!(a.get("/readyz", None).await.status, 200, "a Redis outage does not fail readiness");

    let _server = redis_server(port);
    // Node A's heartbeat writes its entry and Ada's claim into the empty Redis again.
    let claim = format!("{prefix}:live:{ada}");
    let restored = eventually(async || {
        let Ok(mut conn) = redis::Client::open(url.as_str()).unwrap().get_multiplexed_async_connection().await else {
            return false;
        };
        redis::cmd("EXISTS").arg(&claim).query_async::<bool>(&mut conn).await.unwrap_or(false)
    })
    .await;
    assert!(restored, "node A claimed Ada's session again");
    let mut ws = socket(b.addr, &b.create_interview(&token).await, &format!("access_token={token}")).await;
    assert_eq!(code(next_message(&mut ws).await), "session_already_live", "the rule holds across nodes again");
    let observer = Client::connect(options(&b, &coach, &interview, Role::Observer)).await.expect("observes via B");
    assert!(observer.wait_until(PATIENCE, |c| c.is_connected()).await, "{:?}", observer.signals());
    assert_eq!(metric(&a, "candor_rtc_peers", Some(("role", "observer"))), 1.0);
    observer.vanish().await;
    candidate.end().await;
}

#[tokio::test]
async fn a_stopping_node_shows_as_draining_and_leaves_the_registry_at_once() {
    let Some((redis, prefix)) = cluster() else { return };
    let mut a = spawn_app_with(Backend::Postgres, |c| {
        c.redis_url = Some(redis.clone());
        c.redis_prefix = prefix.clone();
        c.drain_grace_secs = 60;
        c.master_key = Some(SecretString::from(MASTER_KEY));
        // Renewed rarely, so only leaving can take the entry away within the test.
        c.cluster_heartbeat_secs = 600;
    })
    .await;
    let b = node(Some(a.state.config.database_url()), redis.clone(), prefix.clone()).await;
    let admin = admin_of(&b).await;
    let (token, _) = a.signed_in_user("ada@example.com").await;
    let interview = a.create_interview(&token).await;
    let candidate = Client::connect(options(&a, &token, &interview, Role::Candidate)).await.expect("joins on A");
    first_question(&candidate).await;
    let a_url = format!("http://{}", a.addr);
    let entry = async || {
        let reply = b.get("/api/v1/admin/nodes", Some(&admin)).await;
        reply.body["nodes"].as_array().unwrap().iter().find(|n| n["url"] == a_url.as_str()).cloned()
    };
    assert_eq!(entry().await.expect("node A is registered")["draining"], false);

    // SIGTERM: node A drains (the running interview may finish) and says so in the registry.
    let stopped = a.stop();
    let draining = async || entry().await.is_some_and(|e| e["draining"] == true && e["sessions"] == 1);
    assert!(eventually(draining).await, "node A drains, its interview still running");
    // The interview ends; node A stops and leaves the registry then, long before its entry would expire.
    candidate.end().await;
    stopped.await.unwrap().unwrap();
    assert_eq!(entry().await, None, "node A left the registry as it stopped");
    assert_eq!(registered(&b, &admin).await, vec![format!("http://{}", b.addr)]);
}
