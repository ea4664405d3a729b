"""mediastream: stream DICOM series as live WebRTC video with interactive segmentation."""

__version__ = "0.1.0"
