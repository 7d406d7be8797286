//! A hand-written SVG timeline of a [`Report`]: one panel per stack with every request's
//! latency over time (coloured by outcome), the phases, and the breaker's state under
//! the full stack's panel.

use std::fmt::Write as _;
use std::time::Duration;

use tower_circuit_breaker::State;

use crate::driver::{Outcome, Phase, Scenario, OUTAGE_HANG};
use crate::report::Report;

const WIDTH: f64 = 960.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 20.0;
const PANEL: f64 = 170.0;
const GAP: f64 = 40.0;
const BAND: f64 = 16.0;

fn outcome_colour(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Success => "#2e7d32",
        Outcome::FastFail => "#1565c0",
        Outcome::Timeout => "#ef6c00",
        Outcome::Error => "#c62828",
    }
}

fn state_colour(state: State) -> &'static str {
    match state {
        State::Closed | State::ForcedClosed => "#a5d6a7",
        State::HalfOpen => "#ffe082",
        _ => "#ef9a9a",
    }
}

pub fn render(report: &Report) -> String {
    let total = report.schedule.total().as_secs_f64();
    let plot = WIDTH - LEFT - RIGHT;
    let x = |t: Duration| LEFT + plot * (t.as_secs_f64() / total).min(1.0);
    let max_ms = OUTAGE_HANG.as_secs_f64() * 1e3 * 1.2;
    let height = 30.0 + 3.0 * (PANEL + GAP) + BAND + 30.0;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{LEFT}" y="18" font-size="13">Latency per request (ms) over time (s): success, fast-fail, timeout, error</text>"#
    );
    let legend = [
        ("success", Outcome::Success),
        ("fast-fail", Outcome::FastFail),
        ("timeout", Outcome::Timeout),
        ("error", Outcome::Error),
    ];
    for (i, (name, outcome)) in legend.iter().enumerate() {
        let lx = WIDTH - RIGHT - 300.0 + 75.0 * i as f64;
        let _ = writeln!(
            svg,
            r#"<circle cx="{lx}" cy="14" r="4" fill="{}"/><text x="{}" y="18">{name}</text>"#,
            outcome_colour(*outcome),
            lx + 7.0
        );
    }

    for (row, scenario) in Scenario::ALL.into_iter().enumerate() {
        let top = 30.0 + row as f64 * (PANEL + GAP);
        let y = |ms: f64| top + PANEL - PANEL * (ms / max_ms).min(1.0);
        let _ = writeln!(
            svg,
            r##"<rect x="{LEFT}" y="{top}" width="{plot}" height="{PANEL}" fill="none" stroke="#999"/>"##
        );
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" font-weight="bold">{}</text>"#,
            LEFT + 4.0,
            top + 13.0,
            scenario.label()
        );
        for ms in [0.0, 100.0, 250.0, 500.0] {
            let y0 = y(ms);
            let _ = writeln!(
                svg,
                r##"<line x1="{}" x2="{LEFT}" y1="{y0}" y2="{y0}" stroke="#999"/><text x="{}" y="{}" text-anchor="end">{ms}</text>"##,
                LEFT - 4.0,
                LEFT - 6.0,
                y0 + 4.0,
            );
        }
        for phase in Phase::ALL {
            let px = x(report.schedule.phase_start(phase));
            let _ = writeln!(
                svg,
                r##"<line x1="{px}" x2="{px}" y1="{top}" y2="{}" stroke="#bbb" stroke-dasharray="4 3"/><text x="{}" y="{}" fill="#555">{}</text>"##,
                top + PANEL,
                px + 4.0,
                top + PANEL - 4.0,
                phase.name()
            );
        }
        for record in &report.run(scenario).records {
            let _ = writeln!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="1.6" fill="{}" fill-opacity="0.6"/>"#,
                x(record.sent_at + record.latency),
                y(record.latency.as_secs_f64() * 1e3),
                outcome_colour(record.outcome)
            );
        }
    }

    // The breaker's state under the last panel.
    let top = 30.0 + 3.0 * (PANEL + GAP) - GAP + 8.0;
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="end">breaker</text>"#,
        LEFT - 6.0,
        top + 12.0
    );
    let end = report.schedule.total();
    for (i, (at, state)) in report.transitions.iter().enumerate() {
        let until = report.transitions.get(i + 1).map_or(end, |next| next.0);
        let _ = writeln!(
            svg,
            r#"<rect x="{:.1}" y="{top}" width="{:.1}" height="{BAND}" fill="{}"><title>{state}</title></rect>"#,
            x(*at),
            (x(until) - x(*at)).max(0.5),
            state_colour(*state)
        );
    }
    let axis = top + BAND + 14.0;
    let step = if total > 30.0 { 5 } else { 2 };
    for second in (0..=total as u64).step_by(step) {
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{axis}" text-anchor="middle">{second}</text>"#,
            x(Duration::from_secs(second))
        );
    }
    svg.push_str("</svg>\n");
    svg
}
