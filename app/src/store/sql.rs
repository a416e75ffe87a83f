//! SQL pieces shared by the queries that still read SQLite directly (the Traces list).

/// `AND <column> IN (tag sets having key=value)` for each filter, with bind numbers from `first`.
pub(crate) fn tag_clauses(column: &str, filters: usize, first: usize) -> String {
    (0..filters)
        .map(|i| {
            let k = first + 2 * i;
            format!(
                " AND {column} IN (SELECT tag_set_id FROM tag_kv WHERE key = ?{k} AND value = ?{})",
                k + 1
            )
        })
        .collect()
}
