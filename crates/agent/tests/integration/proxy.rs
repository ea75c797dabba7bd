//! A TCP proxy between the agent and the fake server that can cut the network: while down it
//! closes every connection (new ones at once, open ones mid-request), so requests fail without
//! an answer, as with a dropped link.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

pub struct Proxy {
    pub addr: SocketAddr,
    state: Arc<Mutex<ProxyState>>,
}

struct ProxyState {
    down: bool,
    /// Cancelled to cut every open connection.
    connections: CancellationToken,
}

impl Proxy {
    pub async fn start(backend: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(ProxyState {
            down: false,
            connections: CancellationToken::new(),
        }));
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let (down, cut) = {
                    let state = shared.lock().unwrap_or_else(|p| p.into_inner());
                    (state.down, state.connections.clone())
                };
                if down {
                    drop(client);
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(backend).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.cancelled() => {}
                    }
                });
            }
        });
        Proxy { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Cuts the network (open connections included) or restores it.
    pub fn set_down(&self, down: bool) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.down = down;
        if down {
            state.connections.cancel();
            state.connections = CancellationToken::new();
        }
    }
}
