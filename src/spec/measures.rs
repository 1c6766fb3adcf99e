//! The `[measures]` table: parameters of the per-trial measures
//! ([`crate::observe::measures`]).

use super::{positive, SpecError};
use crate::observe::measures::MeasureParams;
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMeasures {
    /// Count bins of count_corr and fano.
    #[schemars(extend("default" = 10.0))]
    bin_ms: Option<f64>,
    /// Coincidence window +-dt of sttc.
    #[schemars(extend("default" = 5.0))]
    sttc_dt_ms: Option<f64>,
    /// Bins of the binary spike indicators of kappa.
    #[schemars(extend("default" = 2.0))]
    kappa_bin_ms: Option<f64>,
    /// Bins of the population spike count whose spectrum pop_peak_hz and pop_peak_q read.
    #[schemars(extend("default" = 1.0))]
    psd_bin_ms: Option<f64>,
    /// Welch segment length (half overlap; the whole window if shorter).
    #[schemars(extend("default" = 500.0))]
    psd_segment_ms: Option<f64>,
    /// Also write pairs.parquet: one row per (trial, i, j), i < j, with that pair's count_corr, sttc, kappa and spike_sync.
    #[schemars(extend("default" = false))]
    pairs: Option<bool>,
}

/// Every key positive; a segment holds at least 4 bins of the spectrum.
pub(super) fn validate(raw: &RawMeasures) -> Result<MeasureParams, SpecError> {
    let d = MeasureParams::default();
    let get = |key: &str, x: Option<f64>, default: f64| positive(&format!("measures.{key}"), x.unwrap_or(default));
    let params = MeasureParams {
        bin_ms: get("bin_ms", raw.bin_ms, d.bin_ms)?,
        sttc_dt_ms: get("sttc_dt_ms", raw.sttc_dt_ms, d.sttc_dt_ms)?,
        kappa_bin_ms: get("kappa_bin_ms", raw.kappa_bin_ms, d.kappa_bin_ms)?,
        psd_bin_ms: get("psd_bin_ms", raw.psd_bin_ms, d.psd_bin_ms)?,
        psd_segment_ms: get("psd_segment_ms", raw.psd_segment_ms, d.psd_segment_ms)?,
        pairs: raw.pairs.unwrap_or(false),
    };
    if params.psd_segment_ms < 4.0 * params.psd_bin_ms {
        return Err(SpecError::key(
            "measures.psd_segment_ms",
            Some(params.psd_segment_ms.to_string()),
            format!(
                "must hold at least 4 bins of measures.psd_bin_ms = {} (a spectrum needs a few frequencies)",
                params.psd_bin_ms
            ),
        ));
    }
    Ok(params)
}
