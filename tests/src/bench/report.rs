//! The results table: throughput, latency quantiles, and each row's ratio
//! to the baseline of the same operation (raw, or the limit it cannot beat).

use super::driver::Outcome;
use super::Case;

pub struct Row {
    pub case: Case,
    pub outcome: Outcome,
}

/// Prints the table, the `notes`, then every case's errors. Returns the
/// error total.
pub fn print(rows: &[Row], notes: &[String]) -> u64 {
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
    println!("ratio = ops/s / ops/s of the baseline case named in brackets: raw Redis GET for");
    println!("reads, the CAS script by EVALSHA for CAS and increments, the PostgreSQL upsert loop");
    println!("for durable Set, EIP-712 hash + ecrecover on every thread (the CPU limit) for");
    println!("/verify, and the same CAS unpaid through the gateway (http-cas; else redis-evalsha)");
    println!("for the paid CAS.");
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
    if let (Some(verify), Some(limit)) = (
        ops_per_sec(Case::FacilitatorVerify),
        ops_per_sec(Case::Eip712Recover),
    ) {
        println!(
            "facilitator /verify: {verify:.0}/s = {:.1}% of the EIP-712 + ecrecover limit of \
             {limit:.0}/s on this machine.",
            100.0 * verify / limit
        );
    }
    for note in notes {
        println!("{note}");
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
    let baselines = row.case.baselines();
    let ran = baselines.iter().find_map(|baseline| {
        rows.iter()
            .find(|other| other.case == *baseline && other.outcome.ops() > 0)
    });
    let ratio = if baselines.contains(&row.case) {
        "1.00 (baseline)".to_string()
    } else {
        match ran {
            Some(base) => {
                let ratio = outcome.ops_per_sec() / base.outcome.ops_per_sec();
                // Small ratios (the paid path) keep two significant digits.
                let digits = if ratio > 0.0 && ratio < 0.1 { 4 } else { 2 };
                format!("{ratio:.digits$} ({})", base.case.name())
            }
            None => format!("- ({} not run)", baselines[0].name()),
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
