//! The results table: throughput, latency quantiles, and each row's ratio
//! to the raw baseline of the same operation.

use super::driver::Outcome;
use super::Case;

pub struct Row {
    pub case: Case,
    pub outcome: Outcome,
}

/// Prints the table, then every case's errors. Returns the error total.
pub fn print(rows: &[Row]) -> u64 {
    let header = ["path", "op", "ops/s", "p50 ms", "p99 ms", "ratio", "errors"];
    let cells: Vec<[String; 7]> = rows.iter().map(|row| cells(row, rows)).collect();
    let mut widths = header.map(str::len);
    for line in &cells {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.len());
        }
    }
    let render = |line: [&str; 7]| {
        let parts: Vec<String> = line
            .iter()
            .zip(widths)
            .enumerate()
            // Text columns align left, numbers right.
            .map(|(i, (cell, width))| match i {
                0 | 1 | 5 => format!("{cell:<width$}"),
                _ => format!("{cell:>width$}"),
            })
            .collect();
        println!("{}", parts.join(" | ").trim_end());
    };
    render(header);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    println!("{}", rule.join("-|-"));
    for line in &cells {
        render(line.each_ref().map(String::as_str));
    }

    println!();
    println!("ratio = ops/s / ops/s of the raw baseline named in brackets (GET for reads, the CAS");
    println!(
        "script by EVALSHA for CAS and increments, the PostgreSQL upsert loop for durable Set)."
    );
    let ops_per_sec = |case: Case| {
        let row = rows.iter().find(|row| row.case == case)?;
        (row.outcome.ops() > 0).then(|| row.outcome.ops_per_sec())
    };
    if let (Some(set), Some(raw)) = (
        ops_per_sec(Case::GrpcDurableSet),
        ops_per_sec(Case::RedisSet),
    ) {
        println!("Set (durable) against raw Redis SET: {:.3}.", set / raw);
    }
    let total: u64 = rows.iter().map(|row| row.outcome.errors).sum();
    if total == 0 {
        println!("errors: none");
    } else {
        println!("ERRORS: {total} failed calls; the rows that have them are not clean results:");
        for row in rows.iter().filter(|row| row.outcome.errors > 0) {
            let first = row.outcome.first_error.as_deref().unwrap_or("?");
            println!(
                "  {}: {} errors, first: {first}",
                row.case.name(),
                row.outcome.errors
            );
        }
    }
    total
}

fn cells(row: &Row, rows: &[Row]) -> [String; 7] {
    let outcome = &row.outcome;
    let baseline = row.case.baseline();
    let ratio = if baseline == row.case {
        "1.00 (baseline)".to_string()
    } else {
        match rows.iter().find(|other| other.case == baseline) {
            Some(base) if base.outcome.ops() > 0 => format!(
                "{:.2} ({})",
                outcome.ops_per_sec() / base.outcome.ops_per_sec(),
                baseline.op()
            ),
            _ => format!("- ({} not run)", baseline.name()),
        }
    };
    let (p50, p99) = if outcome.ops() == 0 {
        ("-".to_string(), "-".to_string())
    } else {
        (
            format!("{:.2}", outcome.quantile_ms(0.50)),
            format!("{:.2}", outcome.quantile_ms(0.99)),
        )
    };
    [
        row.case.path().to_string(),
        row.case.op().to_string(),
        format!("{:.0}", outcome.ops_per_sec()),
        p50,
        p99,
        ratio,
        outcome.errors.to_string(),
    ]
}
