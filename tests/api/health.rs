use crate::helpers::spawn_app;

#[tokio::test]
async fn healthz_and_readyz_answer_without_credentials() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz"] {
        let resp = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn responses_carry_a_request_id() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    let id = resp.headers().get("x-request-id").expect("x-request-id");
    assert!(!id.is_empty());
}
