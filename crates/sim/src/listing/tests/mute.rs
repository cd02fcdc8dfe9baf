//! Muted stretches on videos: GQL `muteInfo` and Helix `muted_segments`, set by hand, and
//! withheld.

use super::*;

const GQL_MUTE_QUERY: &str = "query Videos($id: ID!, $first: Int!) { user(id: $id) { videos(first: $first) { edges { node { id muteInfo { mutedSegmentConnection { nodes { offset duration } } } } } } } }";

fn gql_nodes(sim: &SimListing, query: &str) -> Vec<Value> {
    let body = json!({"query": query, "variables": {"id": "77", "first": 10}});
    let answer = json(&post_gql(sim, &[("Client-Id", SIM_CLIENT_ID.to_string())], &body));
    let edges = answer["data"]["user"]["videos"]["edges"]
        .as_array()
        .expect("edges")
        .clone();
    edges.into_iter().map(|e| e["node"].clone()).collect()
}

fn helix_items(sim: &SimListing, token: &str) -> Vec<Value> {
    let answer = json(&helix_videos_get(sim, token, "user_id=77"));
    answer["data"].as_array().expect("data").clone()
}

fn stretches() -> Vec<MutedStretch> {
    vec![
        MutedStretch {
            offset: 120,
            duration: 30,
        },
        MutedStretch {
            offset: 600,
            duration: 70,
        },
    ]
}

#[test]
fn unmuted_videos_answer_null_and_muted_ones_their_stretches() {
    let sim = sim();
    let token = good_token(&sim);
    sim.set_videos(77, vec![video(0, true), video(1, true)]);
    // Before any mute: null in both protocols.
    for node in gql_nodes(&sim, GQL_MUTE_QUERY) {
        assert_eq!(node["muteInfo"], json!({"mutedSegmentConnection": null}));
    }
    for item in helix_items(&sim, &token) {
        assert_eq!(item.get("muted_segments"), Some(&Value::Null));
    }
    assert!(sim.set_video_muted(2_000, stretches()));
    assert!(!sim.set_video_muted(9_999, stretches()));
    assert_eq!(sim.videos(77).expect("set")[1].muted, stretches());
    // Newest first: video 2001 (not muted), then 2000.
    let nodes = gql_nodes(&sim, GQL_MUTE_QUERY);
    assert_eq!(nodes[0]["muteInfo"]["mutedSegmentConnection"], Value::Null);
    assert_eq!(
        nodes[1]["muteInfo"]["mutedSegmentConnection"]["nodes"],
        json!([{"offset": 120, "duration": 30}, {"offset": 600, "duration": 70}])
    );
    let items = helix_items(&sim, &token);
    assert_eq!(items[0]["muted_segments"], Value::Null);
    assert_eq!(
        items[1]["muted_segments"],
        json!([{"duration": 30, "offset": 120}, {"duration": 70, "offset": 600}])
    );
    // A GQL query that does not ask for `muteInfo` does not get it.
    let plain = "query Videos($id: ID!, $first: Int!) { user(id: $id) { videos(first: $first) { edges { node { id } } } } }";
    assert!(gql_nodes(&sim, plain).iter().all(|n| n.get("muteInfo").is_none()));
}

#[test]
fn withheld_mute_info_is_null_in_gql_and_absent_in_helix() {
    let sim = sim();
    let token = good_token(&sim);
    sim.set_videos(77, vec![video(0, true), video(1, true)]);
    assert!(sim.set_video_muted(2_001, stretches()));
    sim.set_mute_info_withheld(true);
    let nodes = gql_nodes(&sim, GQL_MUTE_QUERY);
    assert_eq!(nodes.len(), 2);
    assert!(nodes.iter().all(|n| n.get("muteInfo") == Some(&Value::Null)));
    let items = helix_items(&sim, &token);
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|i| i.get("muted_segments").is_none()));
    sim.set_mute_info_withheld(false);
    assert_eq!(
        helix_items(&sim, &token)[0]["muted_segments"][0],
        json!({"duration": 30, "offset": 120})
    );
}
