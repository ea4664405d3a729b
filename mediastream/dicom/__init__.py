"""The server's DICOM library: validation at upload, storage, series, display pipeline, cache.

Modules: `library` (the `Library` the web layer uses), `ingest` (validation by content),
`decode` (single-frame decoding with pydicom), `display` (modality LUT -> VOI -> 8-bit),
`series` (ordering and summaries), `cache` (decoded frames), `store` (the on-disk index),
`demo` and `phantom` (the synthetic demo series), `errors`, `values` (fast element reads).
"""
