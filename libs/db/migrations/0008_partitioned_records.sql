-- 0008_partitioned_records: the growing tables (cdr_records, meeting_level_changes, cms_writes) become tables
-- range-partitioned by month on their time column, so retention drops whole partitions (no mass DELETE) and every
-- query and index stays the size of a month. Existing rows are moved into their month's partition.
--
-- cdr_records' exactly-once key: Postgres requires a partitioned table's unique index to include the partition key,
-- so the unique index is (session, correlator_index, time). `time` is the record's own attribute, part of what CMS
-- re-sends verbatim (to every receiver, on every retry), so a re-sent record has the same time and meets its first
-- copy in the same partition: the triple is exactly as unique as the pair. docs/architecture.md explains the choice.
--
-- cms_month_partition(parent, column, at): creates the month partition holding `at` (UTC months, named
-- <parent>_pYYYYMM) if it is missing; returns its name, or NULL when it existed. Rows of that month that reached the
-- default partition (a CMS clock far off, or a month nobody created ahead) are moved into it first. Serialised per
-- table by an advisory lock, so replicas of the worker may all call it.
CREATE FUNCTION cms_month_partition(parent text, part_column text, at timestamptz) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  lower_bound timestamptz := date_trunc('month', at, 'UTC');
  upper_bound timestamptz := date_trunc('month', date_trunc('month', at, 'UTC') + interval '32 days', 'UTC');
  part text := parent || '_p' || to_char(date_trunc('month', at, 'UTC') AT TIME ZONE 'UTC', 'YYYYMM');
  fallback text := parent || '_default';
  stray boolean := false;
BEGIN
  IF to_regclass(quote_ident(part)) IS NOT NULL THEN RETURN NULL; END IF;
  PERFORM pg_advisory_xact_lock(hashtext('cms_month_partition'), hashtext(parent));
  IF to_regclass(quote_ident(part)) IS NOT NULL THEN RETURN NULL; END IF;
  IF to_regclass(quote_ident(fallback)) IS NOT NULL THEN
    -- Inserts routed to the default partition wait while its rows of this month move.
    EXECUTE format('LOCK TABLE %I IN EXCLUSIVE MODE', fallback);
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE %I >= $1 AND %I < $2)', fallback, part_column, part_column)
      INTO stray USING lower_bound, upper_bound;
  END IF;
  IF stray THEN
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part, parent);
    EXECUTE format('WITH moved AS (DELETE FROM %I WHERE %I >= $1 AND %I < $2 RETURNING *) INSERT INTO %I SELECT * FROM moved',
      fallback, part_column, part_column, part) USING lower_bound, upper_bound;
    EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', parent, part, lower_bound, upper_bound);
  ELSE
    EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)', part, parent, lower_bound, upper_bound);
  END IF;
  RETURN part;
END $$;
--> statement-breakpoint
-- Turns `tbl` into a table partitioned by month on `part_column`: the same columns, defaults and id sequence, a
-- default partition, a partition per month of its rows and for this month and the next two, its rows copied, then
-- its indexes rebuilt (the primary key and unique indexes gain the partition column, as Postgres requires). Generic,
-- so columns and indexes earlier migrations added come along.
CREATE FUNCTION cms_partition_by_month(tbl text, part_column text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  old text := tbl || '_unpartitioned';
  seq text := pg_get_serial_sequence(quote_ident(tbl), 'id');
  idx record;
  defs text[] := '{}';
  def text;
BEGIN
  EXECUTE format('ALTER TABLE %I RENAME TO %I', tbl, old);
  FOR idx IN
    SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def, i.indisprimary AS pk, i.indisunique AS uniq,
           i.indpred IS NOT NULL AS partial, c.conname
    FROM pg_index i LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid
    WHERE i.indrelid = quote_ident(old)::regclass
  LOOP
    IF idx.pk THEN
      EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', old, idx.conname);
      CONTINUE;
    END IF;
    def := replace(idx.def, format(' ON public.%s ', quote_ident(old)), format(' ON public.%s ', quote_ident(tbl)));
    IF idx.uniq THEN
      IF idx.partial OR right(def, 1) <> ')' THEN RAISE EXCEPTION 'unique index % cannot gain the partition column', idx.name; END IF;
      def := left(def, length(def) - 1) || ', ' || quote_ident(part_column) || ')';
    END IF;
    IF idx.conname IS NOT NULL THEN
      EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', old, idx.conname);
    ELSE
      EXECUTE format('DROP INDEX %s', idx.name);
    END IF;
    defs := defs || def;
  END LOOP;
  IF seq IS NOT NULL THEN EXECUTE format('ALTER SEQUENCE %s OWNED BY NONE', seq); END IF;
  EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (%I)', tbl, old, part_column);
  EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', tbl || '_default', tbl);
  EXECUTE format(
    'SELECT count(cms_month_partition(%L, %L, m)) FROM (SELECT DISTINCT date_trunc(''month'', %I, ''UTC'') AS m FROM %I UNION SELECT now() + n * interval ''1 month'' FROM generate_series(0, 2) n) s',
    tbl, part_column, part_column, old);
  EXECUTE format('INSERT INTO %I SELECT * FROM %I', tbl, old);
  EXECUTE format('DROP TABLE %I', old);
  IF seq IS NOT NULL THEN EXECUTE format('ALTER SEQUENCE %s OWNED BY %I.id', seq, tbl); END IF;
  EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I PRIMARY KEY (id, %I)', tbl, tbl || '_id_' || part_column || '_pk', part_column);
  FOREACH def IN ARRAY defs LOOP
    EXECUTE def;
  END LOOP;
END $$;
--> statement-breakpoint
SELECT cms_partition_by_month('cdr_records', 'time');
--> statement-breakpoint
SELECT cms_partition_by_month('meeting_level_changes', 'at');
--> statement-breakpoint
SELECT cms_partition_by_month('cms_writes', 'at');
--> statement-breakpoint
DROP FUNCTION cms_partition_by_month(text, text);
--> statement-breakpoint
-- Every records API filter is index-backed per partition: a type, node or session absent from a month (a record type
-- CMS sends rarely, a bridge added or retired, a session that ended) must not make that month's partition a full scan.
CREATE INDEX "cdr_records_type_idx" ON "cdr_records" USING btree ("type", "id");
--> statement-breakpoint
CREATE INDEX "cdr_records_node_idx" ON "cdr_records" USING btree ("node", "id");
--> statement-breakpoint
CREATE INDEX "cdr_records_session_idx" ON "cdr_records" USING btree ("session", "id");
--> statement-breakpoint
-- The calls and meetings lists page in their own order (newest start first; latest decision first): each filter that
-- can be rare (a node, a coSpace, the few active calls) gets that order under it, so a page never walks the whole table
-- looking for rows that are not there (the last page of active calls would otherwise read every ended call).
CREATE INDEX "calls_node_started_at_idx" ON "calls" USING btree ("node", "started_at" DESC NULLS LAST, "id");
--> statement-breakpoint
CREATE INDEX "calls_co_space_started_at_idx" ON "calls" USING btree ("co_space", "started_at" DESC NULLS LAST, "id");
--> statement-breakpoint
CREATE INDEX "calls_active_started_at_idx" ON "calls" USING btree ("started_at" DESC NULLS LAST, "id") WHERE "ended_at" IS NULL;
--> statement-breakpoint
CREATE INDEX "meetings_updated_at_idx" ON "meetings" USING btree ("updated_at" DESC, "meeting_key");
