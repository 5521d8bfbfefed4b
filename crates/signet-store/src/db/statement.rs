//! Statements built at run time (optional filters, multi-row inserts), with numbered
//! placeholders (`$1`, `$2`, …): the one spelling that both SQLite and PostgreSQL accept.

use sqlx::any::{Any, AnyArguments};
use sqlx::error::BoxDynError;
use sqlx::query::Query;
use sqlx::{Arguments, AssertSqlSafe, Encode, Type};

use crate::StoreError;

/// SQL text and its bound values, in order.
pub(crate) struct Statement {
    sql: String,
    arguments: AnyArguments,
    error: Option<BoxDynError>,
}

impl Statement {
    pub(crate) fn new(sql: &str) -> Self {
        Self {
            sql: sql.to_owned(),
            arguments: AnyArguments::default(),
            error: None,
        }
    }

    /// Appends SQL text (never a value: values go through [`Self::bind`]).
    pub(crate) fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Appends the next placeholder and binds `value` to it.
    pub(crate) fn bind<'t, T>(&mut self, value: T) -> &mut Self
    where
        T: Encode<'t, Any> + Type<Any>,
    {
        if let Err(e) = self.arguments.add(value) {
            self.error.get_or_insert(e);
        }
        self.sql.push('$');
        self.sql.push_str(&self.arguments.len().to_string());
        self
    }

    /// Appends `(v1, v2, …), (…)`: one parenthesised group per item, filled by `row`.
    pub(crate) fn values<I>(&mut self, items: I, mut row: impl FnMut(&mut Row<'_>, I::Item))
    where
        I: IntoIterator,
    {
        for (i, item) in items.into_iter().enumerate() {
            self.push(if i == 0 { "(" } else { "), (" });
            row(
                &mut Row {
                    statement: self,
                    first: true,
                },
                item,
            );
        }
        self.push(")");
    }

    /// The statement, ready to run; fails if a value could not be encoded.
    pub(crate) fn query(self) -> Result<Query<'static, Any, AnyArguments>, StoreError> {
        match self.error {
            Some(e) => Err(StoreError::Internal(sqlx::Error::Encode(e))),
            None => Ok(sqlx::query_with(AssertSqlSafe(self.sql), self.arguments)),
        }
    }
}

/// One group of values in [`Statement::values`].
pub(crate) struct Row<'s> {
    statement: &'s mut Statement,
    first: bool,
}

impl Row<'_> {
    pub(crate) fn bind<'t, T>(&mut self, value: T) -> &mut Self
    where
        T: Encode<'t, Any> + Type<Any>,
    {
        if !std::mem::take(&mut self.first) {
            self.statement.push(", ");
        }
        self.statement.bind(value);
        self
    }
}
