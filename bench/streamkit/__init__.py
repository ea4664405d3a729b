"""Parts of bench/stream.py, the streaming benchmark: the server process, viewers, the cases."""
