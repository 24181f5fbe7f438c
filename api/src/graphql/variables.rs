//! The variables of a request, coerced as the GraphQL spec's `CoerceVariableValues` says before
//! anything runs: a variable of a non-null type that is missing (without a default) or `null`
//! is a request error, and so is a value that does not fit its type anywhere inside it (a `null`
//! item of a `[T!]`, a missing or `null` required field of an input object, a field the input
//! object does not have, an unknown enum value, a scalar of the wrong kind). async-graphql checks
//! a variable only where an argument uses it, and only against that argument's type, so
//! `query($id: UUID!) { product(id: $id) }` with `{}` or `{"id": null}` would otherwise run.

use async_graphql::Positioned;
use async_graphql::Variables;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, VariableDefinition,
};
use async_graphql::registry::{MetaType, MetaTypeName, Registry};
use async_graphql_value::ConstValue;

/// Why a variable's value was refused: its path (`$input.price.amountMinor`) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("variable {path} {reason}")]
pub struct BadVariable {
    pub path: String,
    pub reason: String,
}

/// Checks the variables of an operation against their declared types (`definitions`).
pub fn check_variables(
    registry: &Registry,
    definitions: &[Positioned<VariableDefinition>],
    variables: &Variables,
) -> Result<(), BadVariable> {
    for definition in definitions {
        let name = &definition.node.name.node;
        let ty = definition.node.var_type.node.to_string();
        let path = format!("${name}");
        match variables.get(name) {
            None if definition.node.default_value.is_none()
                && !definition.node.var_type.node.nullable =>
            {
                return Err(BadVariable {
                    path,
                    reason: format!("of type {ty} was not provided"),
                });
            }
            None => {}
            Some(value) => check_value(registry, &ty, value, &path)?,
        }
    }
    Ok(())
}

fn check_value(
    registry: &Registry,
    ty: &str,
    value: &ConstValue,
    path: &str,
) -> Result<(), BadVariable> {
    let refuse = |reason: String| {
        Err(BadVariable {
            path: path.to_owned(),
            reason,
        })
    };
    match MetaTypeName::create(ty) {
        MetaTypeName::NonNull(inner) => {
            if matches!(value, ConstValue::Null) {
                return refuse(format!("of type {ty} must not be null"));
            }
            check_value(registry, inner, value, path)
        }
        MetaTypeName::List(inner) => match value {
            ConstValue::Null => Ok(()),
            ConstValue::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    check_value(registry, inner, item, &format!("{path}[{i}]"))?;
                }
                Ok(())
            }
            // A single value stands for a list of one.
            other => check_value(registry, inner, other, path),
        },
        MetaTypeName::Named(name) => {
            if matches!(value, ConstValue::Null) {
                return Ok(());
            }
            match registry.types.get(name) {
                Some(MetaType::Scalar {
                    is_valid: Some(is_valid),
                    ..
                }) => {
                    if is_valid(value) {
                        Ok(())
                    } else {
                        refuse(format!("is not a valid {name}"))
                    }
                }
                Some(MetaType::Enum { enum_values, .. }) => match value {
                    ConstValue::String(s) if enum_values.contains_key(s.as_str()) => Ok(()),
                    ConstValue::Enum(s) if enum_values.contains_key(s.as_str()) => Ok(()),
                    _ => refuse(format!(
                        "is not one of {name}'s values ({})",
                        enum_values.keys().cloned().collect::<Vec<_>>().join(", ")
                    )),
                },
                Some(MetaType::InputObject {
                    input_fields,
                    oneof,
                    ..
                }) => {
                    let ConstValue::Object(fields) = value else {
                        return refuse(format!("must be a {name} object"));
                    };
                    if let Some(unknown) = fields
                        .keys()
                        .find(|k| !input_fields.contains_key(k.as_str()))
                    {
                        return refuse(format!("has a field {unknown} that {name} does not have"));
                    }
                    if *oneof
                        && fields
                            .values()
                            .filter(|v| !matches!(v, ConstValue::Null))
                            .count()
                            != 1
                    {
                        return refuse(format!("must set exactly one field of {name}"));
                    }
                    for field in input_fields.values() {
                        let field_path = format!("{path}.{}", field.name);
                        match fields.get(field.name.as_str()) {
                            None if field.default_value.is_none()
                                && matches!(
                                    MetaTypeName::create(&field.ty),
                                    MetaTypeName::NonNull(_)
                                ) =>
                            {
                                return Err(BadVariable {
                                    path: field_path,
                                    reason: format!("of type {} was not provided", field.ty),
                                });
                            }
                            None => {}
                            Some(v) => check_value(registry, &field.ty, v, &field_path)?,
                        }
                    }
                    Ok(())
                }
                // Other scalars take any value; an output or unknown type is for validation to
                // report.
                _ => Ok(()),
            }
        }
    }
}

/// The operation a request runs (`None` when the name matches none, or none is named among
/// several: validation says so).
pub fn selected_operation<'d>(
    doc: &'d ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<&'d OperationDefinition> {
    match (&doc.operations, operation_name) {
        (DocumentOperations::Single(op), _) => Some(&op.node),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| &op.node),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| &op.node)
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
}
