use super::*;
use serde_json::json;
use tessera_catalog::Tier;

fn document() -> &'static Value {
    static BUILT: LazyLock<Value> = LazyLock::new(build);
    &BUILT
}

fn operation(method: &str, path: &str) -> Option<&'static Value> {
    document()["paths"]
        .get(template(path))?
        .get(method.to_ascii_lowercase())
}

fn paid_operation(route: &crate::DeclaredRoute) -> &'static Value {
    operation(route.method.as_str(), route.path)
        .unwrap_or_else(|| panic!("{} {} is not documented", route.method, route.path))
}

#[test]
fn every_route_the_router_serves_has_an_operation_and_nothing_else_does() {
    let declared: Vec<_> = crate::declared_routes()
        .into_iter()
        .filter(|declared| declared.face.is_rest())
        .collect();
    for route in &declared {
        paid_operation(route);
    }
    for (method, path) in crate::FREE_ROUTES {
        assert!(
            operation(method, path).is_some(),
            "the free route {method} {path} is not documented: describe it in openapi/free.rs"
        );
    }
    let documented: usize = document()["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    assert_eq!(documented, declared.len() + crate::FREE_ROUTES.len());
}

#[test]
fn each_paid_operation_carries_its_catalog_price_and_payment_rails() {
    for declared in crate::declared_routes()
        .into_iter()
        .filter(|declared| declared.face.is_rest())
    {
        let operation = paid_operation(&declared);
        let prices = match &operation["x-price"] {
            Value::Array(prices) => prices.clone(),
            price => vec![price.clone()],
        };
        assert_eq!(prices.len(), declared.ids.len(), "{}", declared.path);
        for (price, id) in prices.iter().zip(&declared.ids) {
            let route = tessera_catalog::route(id).unwrap();
            assert_eq!(price["routeId"], *id);
            assert_eq!(price["amount"], route.price.to_string(), "{id}");
            assert_eq!(price["currency"], "USDC");
            assert_eq!(price["decimals"], 6);
            assert_eq!(price["tier"], route.tier.as_str());
            if declared.ids.len() > 1 {
                assert!(price["when"].is_string(), "{id}");
            }
        }
        let tier = tessera_catalog::route(declared.ids[0]).unwrap().tier;
        let rails = match tier {
            Tier::Cpu => json!(["x402", "pow"]),
            Tier::Wallet => json!(["x402"]),
        };
        assert_eq!(operation["x-payment"], rails, "{}", declared.path);
        assert_eq!(
            operation["responses"]["402"]["$ref"],
            "#/components/responses/PaymentRequired"
        );
        assert!(operation.get("x-free").is_none());
    }
    let shared = operation("GET", "/api/memory").unwrap();
    assert_eq!(shared["x-price"][0]["routeId"], "memory.get");
    assert_eq!(shared["x-price"][1]["routeId"], "memory.list");
}

#[test]
fn free_operations_are_marked_free_and_unpriced() {
    for (method, path) in crate::FREE_ROUTES {
        let operation = operation(method, path).unwrap();
        assert_eq!(operation["x-free"], true, "{method} {path}");
        assert!(operation.get("x-price").is_none(), "{method} {path}");
        assert!(operation["responses"]["200"].is_object(), "{method} {path}");
    }
}

#[test]
fn every_memory_route_has_its_face_structs() {
    let mut draft = Draft {
        paths: Paths::new(),
        schemas: BTreeMap::new(),
        splices: Vec::new(),
    };
    for declared in crate::declared_routes()
        .into_iter()
        .filter(|declared| declared.face.is_rest())
    {
        let routes: Vec<_> = declared
            .ids
            .iter()
            .map(|id| tessera_catalog::route(id).unwrap())
            .collect();
        if routes[0].tool.is_none() {
            assert!(
                memory::shape(&mut draft, &routes).is_some(),
                "{:?} has no shape in openapi/memory.rs",
                declared.ids
            );
        }
    }
}

#[test]
fn memory_schemas_follow_the_face_structs() {
    let schemas = &document()["components"]["schemas"];
    let cas = &schemas["agent402.CasBody"];
    assert_eq!(cas["required"], json!(["key"]), "{cas}");
    for field in ["key", "expected", "value", "ttlSeconds", "owner"] {
        assert!(cas["properties"][field].is_object(), "{field} in {cas}");
    }
    let grant = &schemas["agent402.GrantBody"]["properties"]["mode"];
    assert_eq!(grant["enum"], json!(["read", "readwrite"]));
    let entry = &schemas["twos.EntryView"]["properties"];
    assert!(entry["createdAt"].is_object() && entry["sizeBytes"].is_object());
    let list = &schemas["agents.MemoryView"]["properties"];
    assert!(list["agent_id"].is_object(), "{list}");

    let cas_op = operation("POST", "/api/memory/cas").unwrap();
    assert_eq!(
        cas_op["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/agent402.CasBody"
    );
    let names = |op: &Value| -> Vec<String> {
        op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                format!(
                    "{}:{}",
                    p["in"].as_str().unwrap(),
                    p["name"].as_str().unwrap()
                )
            })
            .collect()
    };
    let read = operation("GET", "/api/memory").unwrap();
    for name in [
        "query:key",
        "query:prefix",
        "query:owner",
        "header:Idempotency-Key",
    ] {
        assert!(names(read).contains(&name.to_string()), "{name}: {read}");
    }
    let put = operation("PUT", "/agents/{id}/memory/{*key}").unwrap();
    assert_eq!(
        names(put)[..2],
        ["path:id".to_string(), "path:key".to_string()],
        "{put}"
    );
    let delete = operation("DELETE", "/agents/{id}/memory/{*key}").unwrap();
    assert!(delete["responses"]["204"].is_object());
    assert_eq!(
        delete["responses"]["404"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/AgentsError"
    );
}

#[test]
fn tool_inputs_are_the_toolboxs_schemas_verbatim() {
    for tool in tessera_toolbox::all() {
        let route = tessera_catalog::tool_route(tool.slug).unwrap();
        let schema = tessera_toolbox::input_schema(tool.slug).unwrap();
        let operation = operation(route.method.as_str(), route.path).unwrap();
        match route.method {
            tessera_catalog::Method::Get => {
                let parameters = operation["parameters"].as_array().unwrap();
                let properties = schema["properties"].as_object().unwrap();
                for (name, property) in properties {
                    let parameter = parameters
                        .iter()
                        .find(|p| p["name"] == name.as_str())
                        .unwrap_or_else(|| panic!("{}: no parameter {name}", tool.slug));
                    assert_eq!(&parameter["schema"], property, "{}.{name}", tool.slug);
                    let in_path = route.path.contains(&format!("{{{name}}}"));
                    assert_eq!(parameter["in"], if in_path { "path" } else { "query" });
                }
            }
            _ => assert_eq!(
                &operation["requestBody"]["content"]["application/json"]["schema"], schema,
                "{}",
                tool.slug
            ),
        }
    }
    let convert = operation("GET", "/api/convert/{conversion}").unwrap();
    let conversion = &convert["parameters"][0];
    assert_eq!(
        (
            &conversion["name"],
            &conversion["in"],
            &conversion["required"]
        ),
        (&json!("conversion"), &json!("path"), &json!(true))
    );
}

#[test]
fn the_document_is_openapi_3_1_about_this_build() {
    let document = document();
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(document["info"]["title"], "Tessera");
    assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(document["servers"], json!([{ "url": "/" }]));
    let schemes = document["components"]["securitySchemes"]
        .as_object()
        .unwrap();
    assert_eq!(schemes["x402"]["name"], "PAYMENT-SIGNATURE");
    assert_eq!(schemes["pow"]["name"], "X-Pow-Solution");
    // Served as built: the same JSON, once per process.
    let served: Value = serde_json::from_str(&DOCUMENT).unwrap();
    assert_eq!(&served, document);
}

#[test]
fn path_templates_and_their_parameters() {
    assert_eq!(
        template("/agents/{id}/memory/{*key}"),
        "/agents/{id}/memory/{key}"
    );
    assert_eq!(
        path_parameters("/agents/{id}/memory/{key}"),
        vec!["id", "key"]
    );
    assert!(path_parameters("/api/hash").is_empty());
}
