//! One conformance suite, run against every store: local files and the real
//! S3 server (Garage) of the test environment.

use stockops::repository::storage::{self, S3Options, StoreError, WriteStore};

use crate::common::*;

const MIB: usize = 1024 * 1024;

async fn conformance(store: &dyn WriteStore) {
    // Missing objects.
    assert_eq!(store.head("a/missing").await.unwrap(), None);
    assert!(matches!(
        store.get("a/missing").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.open("a/missing").await,
        Err(StoreError::NotFound(_))
    ));
    // Small objects, atomically.
    let info = store
        .put("a/small.json", b"{\"x\": 1}".to_vec())
        .await
        .unwrap();
    assert_eq!(info.size, 8);
    assert_eq!(store.get("a/small.json").await.unwrap(), b"{\"x\": 1}");
    assert_eq!(store.head("a/small.json").await.unwrap().unwrap().size, 8);
    // A streamed upload in parts (S3: every part but the last >= 5 MiB).
    let parts: Vec<Vec<u8>> = vec![vec![1u8; 5 * MIB], vec![2u8; 5 * MIB], vec![3u8; 123]];
    let mut upload = store.start_upload("a/big.bin").await.unwrap();
    assert_eq!(
        store.head("a/big.bin").await.unwrap(),
        None,
        "invisible until complete"
    );
    for p in &parts {
        upload.part(p.clone()).await.unwrap();
    }
    let done = upload.complete().await.unwrap();
    let expected: Vec<u8> = parts.concat();
    assert_eq!(done.size, expected.len() as u64);
    assert_eq!(
        store.head("a/big.bin").await.unwrap().unwrap().size,
        expected.len() as u64
    );
    let mut reader = store.open("a/big.bin").await.unwrap();
    let mut got = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut got)
        .await
        .unwrap();
    assert!(got == expected, "streamed read returns the uploaded bytes");
    // An empty upload is a valid, empty object.
    let upload = store.start_upload("a/empty.bin").await.unwrap();
    assert_eq!(upload.complete().await.unwrap().size, 0);
    // Listing: sorted, under a prefix, nothing half-written.
    let keys: Vec<String> = store
        .list("a/")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(keys, vec!["a/big.bin", "a/empty.bin", "a/small.json"]);
    // An aborted upload leaves nothing.
    let mut upload = store.start_upload("a/aborted.bin").await.unwrap();
    upload.part(vec![9u8; 5 * MIB]).await.unwrap();
    upload.abort().await.unwrap();
    assert_eq!(store.head("a/aborted.bin").await.unwrap(), None);
    assert!(!store
        .incomplete_uploads()
        .await
        .unwrap()
        .iter()
        .any(|u| u.key == "a/aborted.bin"));
    // A crashed upload is listed as incomplete, and can be aborted.
    let mut upload = store.start_upload("a/crashed.bin").await.unwrap();
    upload.part(vec![8u8; 5 * MIB]).await.unwrap();
    std::mem::forget(upload);
    let incomplete = store.incomplete_uploads().await.unwrap();
    let crashed = incomplete
        .iter()
        .find(|u| u.key == "a/crashed.bin")
        .expect("listed as incomplete");
    assert_eq!(store.head("a/crashed.bin").await.unwrap(), None);
    store.abort_incomplete(crashed).await.unwrap();
    assert!(!store
        .incomplete_uploads()
        .await
        .unwrap()
        .iter()
        .any(|u| u.key == "a/crashed.bin"));
    // Delete, twice.
    store.delete("a/small.json").await.unwrap();
    store.delete("a/small.json").await.unwrap();
    assert_eq!(store.head("a/small.json").await.unwrap(), None);
    // Keys that could escape the repository are refused.
    for bad in ["../x", "/etc/passwd", "a//b", "a/./b", ""] {
        assert!(
            store.put(bad, vec![1]).await.is_err(),
            "{bad:?} must be refused"
        );
    }
}

#[tokio::test]
async fn file_store_conforms() {
    let dir = temp_dir("filestore");
    let store = storage::open(&format!("file://{}", dir.display()), &S3Options::default())
        .await
        .unwrap();
    conformance(store.as_ref()).await;
}

#[tokio::test]
async fn s3_store_conforms() {
    use_s3_env();
    let url = format!("s3://{}/conformance/{}", s3_bucket(), std::process::id());
    let opts = S3Options {
        path_style: true,
        ..S3Options::default()
    };
    let store = storage::open(&url, &opts).await.unwrap();
    conformance(store.as_ref()).await;
    for o in store.list("").await.unwrap() {
        store.delete(&o.key).await.unwrap();
    }
}
