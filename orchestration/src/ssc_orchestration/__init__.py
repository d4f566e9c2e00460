"""ssc-orchestration: Airflow DAGs and the image lock of the Roman SSC pipelines."""
