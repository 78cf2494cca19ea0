//! Customers: create, retrieve, update, list, and a customer's payment methods.

use super::request::Call;
use super::{objects, Emu, EmulatorState, Kind};
use crate::db::new_id;
use crate::routing::RouteBook;
use axum::extract::Path;
use axum::Json;
use serde_json::json;

pub fn routes() -> RouteBook<EmulatorState> {
    RouteBook::new()
        .post("/v1/customers", create_customer)
        .get("/v1/customers", list_customers)
        .get("/v1/customers/{id}", get_customer)
        .post("/v1/customers/{id}", update_customer)
        .get(
            "/v1/customers/{id}/payment_methods",
            list_customer_payment_methods,
        )
}

async fn create_customer(call: Call) -> Emu {
    call.once(|| async {
        let (emu, params) = (&call.emu, &call.params);
        let id = new_id("cus");
        let customer = objects::customer(
            &id,
            params.get("name"),
            params.get("email"),
            &params.map("metadata"),
            emu.now_secs(),
        );
        emu.save(&id, Kind::Customer, None, &customer).await?;
        emu.emit("customer.created", &customer, None).await?;
        Ok(Json(customer))
    })
    .await
}

async fn get_customer(Path(id): Path<String>, call: Call) -> Emu {
    Ok(Json(call.emu.must_load(Kind::Customer, &id).await?))
}

/// Changes the name, email, metadata or default payment method, and says what changed in
/// `customer.updated`'s `previous_attributes`.
async fn update_customer(Path(id): Path<String>, call: Call) -> Emu {
    call.once(|| async {
        let (emu, params) = (&call.emu, &call.params);
        let mut customer = emu.must_load(Kind::Customer, &id).await?;
        let mut previous = serde_json::Map::new();
        for field in ["name", "email", "description", "phone"] {
            if let Some(value) = params.get(field) {
                previous.insert(field.to_owned(), customer[field].clone());
                customer[field] = if value.is_empty() {
                    serde_json::Value::Null
                } else {
                    json!(value)
                };
            }
        }
        let metadata = params.map("metadata");
        if !metadata.is_empty() {
            previous.insert("metadata".to_owned(), customer["metadata"].clone());
            for (k, v) in metadata {
                if v.is_empty() {
                    customer["metadata"].as_object_mut().map(|m| m.remove(&k));
                } else {
                    customer["metadata"][k] = json!(v);
                }
            }
        }
        let default_param = "invoice_settings[default_payment_method]";
        if let Some(pm) = params.get(default_param) {
            let method = emu.load_param(Kind::PaymentMethod, pm, default_param).await?;
            if method["customer"] != id.as_str() {
                return Err(super::EmuError::bad_param(
                    "resource_missing",
                    default_param,
                    format!("The payment method {pm} is not attached to customer {id}."),
                ));
            }
            previous.insert(
                "invoice_settings".to_owned(),
                json!({"default_payment_method": customer["invoice_settings"]["default_payment_method"]}),
            );
            customer["invoice_settings"]["default_payment_method"] = json!(pm);
        }
        emu.save(&id, Kind::Customer, None, &customer).await?;
        if !previous.is_empty() {
            emu.emit("customer.updated", &customer, Some(previous.into()))
                .await?;
        }
        Ok(Json(customer))
    })
    .await
}

async fn list_customers(call: Call) -> Emu {
    let email = call.params.get("email").map(str::to_owned);
    Ok(Json(
        call.emu
            .page("/v1/customers", Kind::Customer, None, &call.params, |c| {
                email.as_deref().is_none_or(|e| c["email"] == e)
            })
            .await?,
    ))
}

async fn list_customer_payment_methods(Path(id): Path<String>, call: Call) -> Emu {
    let emu = &call.emu;
    emu.must_load(Kind::Customer, &id).await?;
    let kind = call.params.get("type").map(str::to_owned);
    Ok(Json(
        emu.page(
            &format!("/v1/customers/{id}/payment_methods"),
            Kind::PaymentMethod,
            Some(&id),
            &call.params,
            |pm| kind.as_deref().is_none_or(|t| pm["type"] == t),
        )
        .await?,
    ))
}
