"""Chaining the stages: in this process, in Dask or Spark tasks, or as batch jobs."""
