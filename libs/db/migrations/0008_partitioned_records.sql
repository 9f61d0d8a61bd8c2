-- 0008_partitioned_records: placeholder, replaced by the change that needs it.
SELECT 1;
