//! The migrations are written once for both databases (`migrations/`, rendered per dialect by
//! the store); this proves that what each database ends up with is the same schema: the same
//! tables, columns, kinds of column, NOT NULL and primary keys, and the same indexes.

use std::collections::BTreeSet;

use leadping_invitations::store::Store;

use crate::helpers::{drop_postgres_database, fresh_postgres_database, temp_dir};

/// (table, column, kind, not null, in the primary key)
type Column = (String, String, &'static str, bool, bool);
/// (table, columns in order, unique)
type Index = (String, String, bool);

/// The two column kinds the schema uses; anything else is reported as it is.
fn kind(declared: &str) -> &'static str {
    let declared = declared.to_ascii_lowercase();
    if declared.contains("int") {
        "integer"
    } else if declared == "text" {
        "text"
    } else {
        panic!("a column of a type the store does not use: {declared}")
    }
}

fn sqlite_schema(path: &std::path::Path) -> (BTreeSet<Column>, BTreeSet<Index>) {
    let db = rusqlite::Connection::open(path).unwrap();
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut columns = BTreeSet::new();
    let mut indexes = BTreeSet::new();
    for table in &tables {
        let mut stmt = db
            .prepare("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1)")
            .unwrap();
        let rows = stmt
            .query_map([table], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, i64>(3)? > 0,
                ))
            })
            .unwrap();
        for row in rows {
            let (name, ty, not_null, pk) = row.unwrap();
            // A primary key is never null in PostgreSQL; SQLite only enforces it for its row id.
            columns.insert((table.clone(), name, kind(&ty), not_null || pk, pk));
        }
        let mut stmt = db
            .prepare("SELECT name, \"unique\", origin FROM pragma_index_list(?1)")
            .unwrap();
        let list: Vec<(String, bool, String)> = stmt
            .query_map([table], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for (name, unique, origin) in list {
            // Primary keys are compared as columns above (an INTEGER PRIMARY KEY has no index).
            if origin == "pk" {
                continue;
            }
            let cols: Vec<String> = db
                .prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")
                .unwrap()
                .query_map([&name], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            indexes.insert((table.clone(), cols.join(","), unique));
        }
    }
    (columns, indexes)
}

fn postgres_schema(url: &str) -> (BTreeSet<Column>, BTreeSet<Index>) {
    let mut db = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let mut columns = BTreeSet::new();
    for r in db
        .query(
            "SELECT c.table_name::text, c.column_name::text, c.data_type::text, c.is_nullable = 'NO', \
             EXISTS (SELECT 1 FROM information_schema.table_constraints t \
                     JOIN information_schema.key_column_usage k \
                       ON k.constraint_name = t.constraint_name AND k.table_name = t.table_name \
                     WHERE t.constraint_type = 'PRIMARY KEY' AND t.table_name = c.table_name \
                       AND k.column_name = c.column_name) \
             FROM information_schema.columns c WHERE c.table_schema = 'public'",
            &[],
        )
        .unwrap()
    {
        let ty: String = r.get(2);
        columns.insert((r.get(0), r.get(1), kind(&ty), r.get(3), r.get(4)));
    }
    let mut indexes = BTreeSet::new();
    for r in db
        .query(
            "SELECT t.relname::text, \
             string_agg(a.attname::text, ',' ORDER BY array_position(i.indkey::int2[], a.attnum)), \
             i.indisunique \
             FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid \
             JOIN pg_namespace n ON n.oid = t.relnamespace \
             JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY (i.indkey) \
             WHERE n.nspname = 'public' AND NOT i.indisprimary \
             GROUP BY i.indexrelid, t.relname, i.indisunique",
            &[],
        )
        .unwrap()
    {
        indexes.insert((r.get(0), r.get(1), r.get(2)));
    }
    (columns, indexes)
}

#[test]
fn both_databases_end_with_the_same_schema() {
    let Some(url) = fresh_postgres_database() else {
        return;
    };
    let dir = temp_dir("schema");
    let path = dir.join("leadping.db");
    drop(Store::open(&format!("sqlite://{}", path.display())).unwrap());
    drop(Store::open(&url).unwrap());
    let (sqlite_columns, sqlite_indexes) = sqlite_schema(&path);
    let (pg_columns, pg_indexes) = postgres_schema(&url);
    drop_postgres_database(&url);
    let _ = std::fs::remove_dir_all(&dir);

    // The check must look at something: every table the store uses, and its keys.
    let tables: BTreeSet<&str> = sqlite_columns.iter().map(|c| c.0.as_str()).collect();
    for t in [
        "businesses",
        "members",
        "invitations",
        "seat_ledger",
        "outbox",
        "idempotency_records",
        "schema_migrations",
    ] {
        assert!(tables.contains(t), "SQLite has no table {t}: {tables:?}");
    }
    assert!(
        sqlite_columns
            .iter()
            .any(|c| c.0 == "outbox" && c.1 == "id" && c.4)
    );
    assert!(!sqlite_indexes.is_empty());

    assert_eq!(
        differences(&sqlite_columns, &pg_columns),
        (vec![], vec![]),
        "columns only SQLite has, and only PostgreSQL has"
    );
    assert_eq!(
        differences(&sqlite_indexes, &pg_indexes),
        (vec![], vec![]),
        "indexes only SQLite has, and only PostgreSQL has"
    );
}

/// What only `a` has, and what only `b` has.
fn differences<T: Ord + Clone>(a: &BTreeSet<T>, b: &BTreeSet<T>) -> (Vec<T>, Vec<T>) {
    (
        a.difference(b).cloned().collect(),
        b.difference(a).cloned().collect(),
    )
}
