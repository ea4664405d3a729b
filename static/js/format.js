// Small formatting helpers shared by the views.

export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** Decimals needed to show multiples of `step` (0.01 → 2, 0.5 → 1, 5 → 0). */
export function decimalsFor(step) {
  if (!step || step >= 1) return 0;
  return Math.min(6, Math.max(0, Math.ceil(-Math.log10(step) - 1e-9)));
}

/** A number for people: `decimals` places at most, or by default fewer the larger it is. */
export function formatNumber(value, decimals = null) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "—";
  if (Number.isInteger(value)) return value.toLocaleString("en");
  const size = Math.abs(value);
  const places = decimals ?? (size >= 100 ? 1 : size >= 1 ? 2 : 3);
  return value.toLocaleString("en", { minimumFractionDigits: 0, maximumFractionDigits: places });
}

// Units by the suffix convention of the segmentation stats (docs/segmentation.md).
const UNITS = [
  ["_mm2", "mm²"],
  ["_mm", "mm"],
  ["_px", "px"],
];

// Nicer names for the stats the bundled algorithms report; anything else is shown by its key.
const LABELS = {
  regions: "Regions",
  largest_area: "Largest region",
  area: "Area",
  perimeter: "Perimeter",
  centroid_x: "Centroid x",
  centroid_y: "Centroid y",
  iterations: "Iterations",
};

/**
 * The measurements of a click algorithm's result (stats with `found`), each with its unit:
 * area in mm² (px² without Pixel Spacing), mean ± SD of the values inside (`valueUnit`, e.g.
 * HU), and the perimeter in mm (px).
 */
export function measurementRows(stats, valueUnit = "") {
  const rows = [];
  const pick = (mm, px, mmUnit, pxUnit) =>
    typeof stats[mm] === "number"
      ? `${formatNumber(stats[mm])} ${mmUnit}`
      : typeof stats[px] === "number"
        ? `${formatNumber(stats[px])} ${pxUnit}`
        : null;
  const area = pick("area_mm2", "area_px", "mm²", "px²");
  if (area) rows.push(["Area", area]);
  if (typeof stats.mean === "number") {
    const sd = typeof stats.sd === "number" ? ` ± ${formatNumber(stats.sd, 1)}` : "";
    const unit = valueUnit ? ` ${valueUnit}` : "";
    rows.push(["Mean ± SD", `${formatNumber(stats.mean, 1)}${sd}${unit}`]);
  }
  const perimeter = pick("perimeter_mm", "perimeter_px", "mm", "px");
  if (perimeter) rows.push(["Perimeter", perimeter]);
  return rows;
}

/**
 * Group a frame's `stats` into [label, "value unit · value unit"] rows: `area_px` and
 * `area_mm2` become one "Area" row. Null values (no Pixel Spacing) are left out.
 */
export function statRows(stats) {
  const groups = new Map();
  for (const [key, value] of Object.entries(stats ?? {})) {
    const [suffix, lengthUnit] = UNITS.find(([end]) => key.endsWith(end)) ?? ["", ""];
    const base = suffix ? key.slice(0, -suffix.length) : key;
    // `area_px` counts pixels: an area in px², as `area_mm2` is one in mm².
    const unit = lengthUnit === "px" && base.includes("area") ? "px²" : lengthUnit;
    if (!groups.has(base)) groups.set(base, []);
    if (value !== null && value !== undefined) groups.get(base).push({ value, unit });
  }
  const rows = [];
  for (const [base, values] of groups) {
    if (!values.length) continue;
    const label = LABELS[base] ?? base.replaceAll("_", " ").replace(/^./, (c) => c.toUpperCase());
    const text = values
      .map(({ value, unit }) => {
        const shown = Array.isArray(value)
          ? value.map((v) => formatNumber(v)).join(", ")
          : formatNumber(value);
        return unit ? `${shown} ${unit}` : shown;
      })
      .join(" · ");
    rows.push([label, text]);
  }
  return rows;
}
