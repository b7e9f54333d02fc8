"""From output files to what people look at: plots, tables, the report page, exports."""
