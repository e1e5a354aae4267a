//! Golden tests of `trainplan hardware` and `trainplan models`: headers, ids, and what a broken
//! `--hardware-db` folder prints.

mod common;

use common::trainplan;

/// Runs `args`, requires success, and returns stdout.
fn stdout_of(args: &[&str]) -> String {
    let out = trainplan(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// CSV rows (header first) split on commas; the listings quote nothing numeric.
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    reader
        .records()
        .map(|r| r.expect("valid csv").iter().map(str::to_string).collect())
        .collect()
}

#[test]
fn hardware_csv_lists_the_ten_accelerators() {
    let rows = csv_rows(&stdout_of(&["hardware", "--format", "csv"]));
    assert_eq!(
        rows[0].join(","),
        "id,name,vendor,bf16_tflops,fp16_tflops,fp8_tflops,hbm_gib,hbm_tbps,\
         scaleup_unidir_gbps,tdp_w,price_usd_per_gpu_hour,default_node"
    );
    let ids: Vec<&str> = rows[1..].iter().map(|r| r[0].as_str()).collect();
    for id in [
        "a100-40gb",
        "a100-80gb",
        "a100-80gb-pcie",
        "a800",
        "h100-sxm",
        "h100-pcie",
        "h800",
        "h200",
        "b200",
        "gb200",
        "mi300x",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    let h100 = rows.iter().find(|r| r[0] == "h100-sxm").expect("h100 row");
    assert_eq!(h100[3], "989.4");
    assert_eq!(h100[8], "450");
}

#[test]
fn hardware_nodes_have_their_own_schema() {
    let rows = csv_rows(&stdout_of(&["hardware", "--nodes", "--format", "csv"]));
    assert_eq!(
        rows[0].join(","),
        "id,name,accelerator,gpus_per_node,scaleup_domain,nics_per_node,nic_gbit_s"
    );
    let nvl72 = rows.iter().find(|r| r[0] == "gb200-nvl72").expect("nvl72");
    assert_eq!((nvl72[3].as_str(), nvl72[4].as_str()), ("4", "72"));
}

#[test]
fn models_csv_has_plain_integer_params() {
    let rows = csv_rows(&stdout_of(&["models", "--format", "csv"]));
    assert_eq!(
        rows[0].join(","),
        "id,name,params,n_layers,hidden,n_heads,n_kv_heads,ffn,vocab,seq_len,ffn_act,published_params,head_dim,active_params,moe_experts,moe_top_k,moe_shared_ffn,moe_dense_layers,moe_dense_ffn,moe_layer_freq,mla_kv_lora_rank"
    );
    assert!(rows.len() > 31);
    for row in &rows[1..] {
        assert!(row[2].parse::<u64>().is_ok(), "params {:?}", row[2]);
    }
    let llama = rows
        .iter()
        .find(|r| r[0] == "llama3-70b")
        .expect("llama3-70b");
    assert_eq!(llama[2], "70553706496");
    assert_eq!(llama[6], "8");
    assert_eq!(
        (llama[12].as_str(), llama[13].as_str()),
        ("128", "70553706496")
    );
    // Dense models leave the MoE columns empty.
    assert_eq!(llama[14..], ["", "", "", "", "", "", ""]);
    let q15 = rows
        .iter()
        .find(|r| r[0] == "qwen1.5-moe-a2.7b")
        .expect("qwen1.5-moe-a2.7b");
    assert_eq!(q15[14..], ["60", "4", "5632", "0", "", "1", ""]);
    // DeepSeek-V3 leads with 3 dense layers under latent attention; Llama 4 Maverick
    // interleaves its dense layers with the MoE ones.
    let find = |id: &str| rows.iter().find(|r| r[0] == id).expect(id);
    assert_eq!(find("deepseek-v3")[17..], ["3", "18432", "1", "512"]);
    assert_eq!(find("llama4-maverick")[17..], ["0", "16384", "2", ""]);
    // Qwen3's heads are 128 wide on a 2048 or 4096 hidden size, and its MoE layers route each
    // token to 8 of 128 experts: 3.3B of 30.5B and 22B of 235B parameters active (Qwen3
    // Technical Report, Table 2 and the model names).
    // Qwen1.5-MoE-A2.7B's 5632-wide shared expert is active for every token beside its 4 of 60
    // routed experts: 2.7B of 14.3B active (its model card).
    for (id, active) in [
        ("qwen3-30b-a3b", 3.3e9),
        ("qwen3-235b-a22b", 22e9),
        ("qwen1.5-moe-a2.7b", 2.7e9),
    ] {
        let q = rows.iter().find(|r| r[0] == id).expect(id);
        assert_eq!(q[12], "128", "{id}");
        let got: f64 = q[13].parse().expect("integer");
        assert!((got / active - 1.0).abs() < 0.02, "{id}: {got}");
    }
}

#[test]
fn json_and_table_formats_work() {
    let json: serde_json::Value =
        serde_json::from_str(&stdout_of(&["hardware", "--format", "json"])).expect("json");
    let first = &json.as_array().expect("array")[0];
    assert!(first["bf16_tflops"].is_number());
    assert!(first["id"].is_string());
    let table = stdout_of(&["models", "--format", "table"]);
    assert!(table.lines().next().unwrap_or("").starts_with("id "));
}

#[test]
fn output_file_gets_the_listing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("hw.csv");
    let path_str = path.to_str().expect("utf-8 path");
    let printed = stdout_of(&["hardware", "--format", "csv", "-o", path_str]);
    assert!(printed.is_empty());
    let written = std::fs::read_to_string(&path).expect("written");
    assert!(written.starts_with("id,name,vendor,"));
}

#[test]
fn broken_hardware_db_names_file_line_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("nodes")).expect("mkdir");
    std::fs::write(
        dir.path().join("nodes/my-node.toml"),
        "id = \"my-node\"\nname = \"Mine\"\naccelerator = \"h100-sxm\"\n\
         gpus_per_node = 8\nscaleup_domain = 8\nnics_per_node = 8\nnic_gbits = 400\n\
         source = \"test\"\n",
    )
    .expect("write");
    let db = dir.path().to_str().expect("utf-8 path");
    let out = trainplan(&["--hardware-db", db, "hardware", "--format", "csv"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nodes/my-node.toml:7:1"), "{stderr}");
    assert!(stderr.contains("nic_gbits"), "{stderr}");
    assert!(stderr.contains("did you mean `nic_gbit_s`?"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    std::fs::write(
        dir.path().join("nodes/my-node.toml"),
        "id = \"my-node\"\nname = \"Mine\"\naccelerator = \"h100-sxm\"\n\
         gpus_per_node = 0\nscaleup_domain = 8\nnics_per_node = 8\nnic_gbit_s = 400\n\
         source = \"test\"\n",
    )
    .expect("write");
    let out = trainplan(&["--hardware-db", db, "models"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("nodes/my-node.toml:4:1: field `gpus_per_node`"),
        "{stderr}"
    );
}
