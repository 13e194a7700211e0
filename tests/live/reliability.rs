//! The database goes away mid-interview: a TCP cut between the server and PostgreSQL for five seconds (new
//! connections refused, open ones dropped, as a restart does). The session's writes wait and retry, and the
//! answer typed during the cut is stored once the database is back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use candor_loadtest::{Client, Role};
use serde_json::json;
use tokio::sync::watch;

use crate::helpers::{Backend, service_available, spawn_app_with};
use crate::{PATIENCE, events_of, options};

/// A TCP proxy in front of the database that can be cut.
struct Proxy {
    down: watch::Sender<bool>,
}

impl Proxy {
    /// Listens at once (so the configuration can name it); forwards to `target`.
    fn start(target: SocketAddr) -> (Self, SocketAddr) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (down, watching) = watch::channel(false);
        tokio::spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((mut client, _)) = listener.accept().await {
                if *watching.borrow() {
                    continue; // refused: dropped at once
                }
                let mut cut = watching.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.wait_for(|down| *down) => {}
                    }
                });
            }
        });
        (Self { down }, addr)
    }

    fn cut(&self, down: bool) {
        self.down.send_replace(down);
    }
}

#[tokio::test]
async fn an_answer_given_while_the_database_is_away_is_stored_when_it_is_back() {
    if !service_available("CANDOR_TEST_DATABASE_URL") {
        return;
    }
    let mut proxy = None;
    let app = spawn_app_with(Backend::Postgres, |config| {
        let url = config.database_url.clone().unwrap();
        let (rest, path) = url.rsplit_once('/').unwrap();
        let (scheme_user, host_port) = rest.rsplit_once('@').unwrap();
        let target: SocketAddr = host_port.parse().unwrap();
        let (cut, addr) = Proxy::start(target);
        proxy = Some(cut);
        config.database_url = Some(format!("{scheme_user}@{addr}/{path}"));
    })
    .await;
    let proxy = proxy.unwrap();
    let (token, _) = app.signed_in_user("ada@example.com").await;
    let interview = app.create_interview(&token).await;
    let client = Client::connect(options(&app, &token, &interview, Role::Candidate)).await.expect("connects");
    assert!(client.wait_until(PATIENCE, |c| !events_of(c, "interviewer.question").is_empty()).await);

    proxy.cut(true);
    let answer = "While the database was away I described how I rebuilt our billing pipeline and cut failures by half.";
    client.send_event(&json!({"v": 1, "type": "answer.text", "text": answer}).to_string()).await.unwrap();
    // The outage itself lasts five seconds, as a database restart would.
    tokio::time::sleep(Duration::from_secs(5)).await;
    proxy.cut(false);

    let id = interview.parse().unwrap();
    let store = Arc::new(app.state.store.clone());
    let mut stored = false;
    for _ in 0..600 {
        stored = store.turns(id).await.is_ok_and(|turns| turns.iter().any(|t| t.text == answer));
        if stored {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(stored, "the answer typed during the outage was stored");
    assert!(client.is_connected(), "the session went on through the outage");
    client.end().await;
}
