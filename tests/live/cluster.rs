//! Nodes sharing a database and a Redis: one live interview per user holds across them, and a node whose Redis
//! is down keeps the rule on its own.

use candor_loadtest::{Client, Role};
use secrecy::SecretString;

use crate::helpers::{Backend, TestApp, service_available, spawn_app_with};
use crate::signaling::{code, next_message, socket};
use crate::{PATIENCE, events_of, options};

/// A node on the database file `database` (the first node's, when given) with the Redis at `redis`.
async fn node(database: Option<String>, redis: String, prefix: String) -> TestApp {
    spawn_app_with(Backend::Sqlite, move |c| {
        c.database_url = database;
        c.redis_url = Some(redis);
        c.redis_prefix = prefix;
        // One key for both, as nodes of one deployment share it (the sealed columns' key is in the database).
        c.master_key = Some(SecretString::from("a master key shared by every node of this test"));
    })
    .await
}

async fn first_question(client: &Client) {
    assert!(client.wait_until(PATIENCE, |c| !events_of(c, "interviewer.question").is_empty()).await, "{:?}", client.events());
}

#[tokio::test]
async fn one_live_interview_per_user_holds_across_nodes_sharing_redis() {
    if !service_available("CANDOR_TEST_REDIS_URL") {
        return;
    }
    let redis = std::env::var("CANDOR_TEST_REDIS_URL").unwrap();
    let prefix = format!("candor-test-{}", uuid::Uuid::new_v4().simple());
    let a = node(None, redis.clone(), prefix.clone()).await;
    let b = node(Some(a.state.config.database_url()), redis.clone(), prefix.clone()).await;
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
