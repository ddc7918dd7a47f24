"""The Ray Serve embedding endpoint around uts.embed."""
