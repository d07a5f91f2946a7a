-- The usage ledger is append-only: quotas are sums over it, so a changed or deleted row would
-- silently change what users were charged. Corrections are new rows (refund, reset).
CREATE FUNCTION usage_ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'usage_ledger is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
--> statement-breakpoint
CREATE TRIGGER usage_ledger_append_only
  BEFORE UPDATE OR DELETE ON usage_ledger
  FOR EACH ROW EXECUTE FUNCTION usage_ledger_refuse_change();
--> statement-breakpoint
CREATE TRIGGER usage_ledger_no_truncate
  BEFORE TRUNCATE ON usage_ledger
  FOR EACH STATEMENT EXECUTE FUNCTION usage_ledger_refuse_change();
