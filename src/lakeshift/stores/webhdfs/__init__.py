"""ADLS Gen1 and Hadoop HDFS sources over WebHDFS (one backend, two dialects)."""
