--
-- PostgreSQL database dump
--


-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: as_epoch(timestamp without time zone); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.as_epoch(ts timestamp without time zone) RETURNS bigint
    LANGUAGE plpgsql IMMUTABLE
    AS $$
BEGIN
    RETURN (EXTRACT(EPOCH FROM ts) * 1000)::BIGINT;
END;
$$;


--
-- Name: bump_timestamp(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.bump_timestamp() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    previous BIGINT;
    current BIGINT;
BEGIN
    previous := NULL;
    WITH existing_timestamps AS (
      -- Timestamp of latest record.
      (
        SELECT last_modified
        FROM objects
        WHERE parent_id = NEW.parent_id
          AND resource_name = NEW.resource_name
        ORDER BY last_modified DESC
        LIMIT 1
      )
      -- Timestamp when resource was empty.
      UNION
      (
        SELECT last_modified
        FROM timestamps
        WHERE parent_id = NEW.parent_id
          AND resource_name = NEW.resource_name
      )
    )
    SELECT as_epoch(MAX(last_modified)) INTO previous
      FROM existing_timestamps;

    --
    -- This bumps the current timestamp to 1 msec in the future if the previous
    -- timestamp is equal to the current one (or higher if was bumped already).
    --
    -- If a bunch of requests from the same user on the same resource
    -- arrive in the same millisecond, the unicity constraint can raise
    -- an error (operation is cancelled).
    -- See https://github.com/mozilla-services/cliquet/issues/25
    --
    current := as_epoch(clock_timestamp()::TIMESTAMP);
    IF previous IS NOT NULL AND previous >= current THEN
        current := previous + 1;
    END IF;

    IF NEW.last_modified IS NULL OR
       (previous IS NOT NULL AND as_epoch(NEW.last_modified) = previous) THEN
        -- If record does not carry last-modified, or if the one specified
        -- is equal to previous, assign it to current (i.e. bump it).
        NEW.last_modified := from_epoch(current);
    END IF;

    RETURN NEW;
END;
$$;


--
-- Name: from_epoch(bigint); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.from_epoch(epoch bigint) RETURNS timestamp without time zone
    LANGUAGE plpgsql IMMUTABLE
    AS $$
BEGIN
    RETURN TIMESTAMP WITH TIME ZONE 'epoch' + epoch * INTERVAL '1 millisecond';
END;
$$;


--
-- Name: kinto_changes_states_ca17a86e8d75(text, text, text[], text[], text[], boolean[], boolean, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.kinto_changes_states_ca17a86e8d75(p_parent_id text, p_resource_name text, p_bucket_ids text[], p_collection_ids text[], p_entry_ids text[], p_resolve boolean[], p_tracks_readers boolean, p_host text) RETURNS TABLE(now bigint, newest_cursor bigint, states json)
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
        #variable_conflict use_column
        BEGIN
          RETURN QUERY WITH base AS (
      SELECT as_epoch(clock_timestamp()::TIMESTAMP) AS now,
             COALESCE((SELECT as_epoch(last_modified)
                         FROM objects
                        WHERE parent_id = p_parent_id AND resource_name = p_resource_name
                        ORDER BY last_modified DESC
                        LIMIT 1), 0) AS newest_cursor
    ), states AS (
      SELECT c.*,
             EXISTS (SELECT 1
                       FROM objects
                      WHERE resource_name = 'collection' AND NOT deleted
                        AND parent_id = '/buckets/' || c.bucket_id
                        AND id = c.collection_id) AS present,
             as_epoch(GREATEST(
               (SELECT last_modified
                  FROM objects
                 WHERE parent_id = c.uri AND resource_name = 'record'
                 ORDER BY last_modified DESC
                 LIMIT 1),
               (SELECT last_modified
                  FROM timestamps
                 WHERE parent_id = c.uri AND resource_name = 'record'))) AS records_timestamp,
             (SELECT data
                FROM objects
               WHERE parent_id = p_parent_id AND resource_name = p_resource_name
                 AND id = c.entry_id AND NOT deleted) AS entry
        FROM (SELECT *, '/buckets/' || bucket_id || '/collections/' || collection_id AS uri
                FROM unnest(CAST(p_bucket_ids AS TEXT[]),
                            CAST(p_collection_ids AS TEXT[]),
                            CAST(p_entry_ids AS TEXT[]),
                            CAST(p_resolve AS BOOLEAN[]))
                     WITH ORDINALITY AS u(bucket_id, collection_id, entry_id, resolve, position)
             ) AS c
    ), moved AS (
      SELECT states.*, row_number() OVER (ORDER BY position) AS n
        FROM states
       WHERE present AND records_timestamp IS NOT NULL
         AND NOT resolve AND (entry ? '_readers' OR NOT p_tracks_readers)
         AND entry -> 'deleted' IS DISTINCT FROM 'true'::JSONB
         AND entry -> '_timestamp' IS DISTINCT FROM to_jsonb(records_timestamp)
    ), cursors AS (
      SELECT moved.*,
             jsonb_build_object('bucket', bucket_id, 'collection', collection_id,
                                'host', CAST(p_host AS TEXT),
                                '_timestamp', records_timestamp)
               || CASE WHEN entry ? '_readers'
                       THEN jsonb_build_object('_readers', entry -> '_readers')
                       ELSE '{}'::JSONB END AS new_entry,
             n + GREATEST(newest_cursor,
                          MAX(LEAST(records_timestamp, now) - n) OVER (ORDER BY position))
               AS cursor
        FROM moved, base
    ), written AS (
      INSERT INTO objects (id, parent_id, resource_name, data, last_modified, deleted)
      SELECT entry_id, p_parent_id, p_resource_name, new_entry, from_epoch(cursor), FALSE
        FROM cursors
       ORDER BY position
      ON CONFLICT (id, parent_id, resource_name) DO UPDATE
      SET data = EXCLUDED.data,
          deleted = FALSE,
          last_modified = EXCLUDED.last_modified
    )
    SELECT now,
           GREATEST(newest_cursor, (SELECT MAX(cursor) FROM cursors)) AS newest_cursor,
           (SELECT json_agg(json_build_array(states.present, states.records_timestamp,
                                             COALESCE(cursors.new_entry, states.entry))
                            ORDER BY position)
              FROM states LEFT JOIN cursors USING (position)) AS states
      FROM base;
        END
        $$;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: access_control_entries; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.access_control_entries (
    object_id text NOT NULL COLLATE pg_catalog."C",
    permission text NOT NULL,
    principal text NOT NULL
);


--
-- Name: metadata; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.metadata (
    name character varying(128) NOT NULL,
    value character varying(512) NOT NULL
);


--
-- Name: objects; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.objects (
    id text NOT NULL COLLATE pg_catalog."C",
    parent_id text NOT NULL COLLATE pg_catalog."C",
    resource_name text NOT NULL COLLATE pg_catalog."C",
    last_modified timestamp without time zone NOT NULL,
    data jsonb DEFAULT '{}'::jsonb NOT NULL,
    deleted boolean NOT NULL
);


--
-- Name: timestamps; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.timestamps (
    parent_id text NOT NULL COLLATE pg_catalog."C",
    resource_name text NOT NULL COLLATE pg_catalog."C",
    last_modified timestamp without time zone NOT NULL
);


--
-- Name: user_principals; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.user_principals (
    user_id text NOT NULL COLLATE pg_catalog."C",
    principal text NOT NULL
);


--
-- Data for Name: access_control_entries; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.access_control_entries VALUES ('/buckets/alice-private', 'collection:create', 'basicauth:a50d5cea1d189ce011d8ed18d7a70fe085108ece559248dbf1a66bad77803019');
INSERT INTO public.access_control_entries VALUES ('/buckets/alice-private', 'write', 'basicauth:28f26d796c54eedb9438feeee7830f2c624264e0add14221990a1fffacbae16d');
INSERT INTO public.access_control_entries VALUES ('/buckets/alice-private/collections/notes', 'write', 'basicauth:28f26d796c54eedb9438feeee7830f2c624264e0add14221990a1fffacbae16d');
INSERT INTO public.access_control_entries VALUES ('/buckets/alice-private/collections/notes/records/9a3c6ac4-f875-40cf-9aad-3274d571465a', 'write', 'basicauth:28f26d796c54eedb9438feeee7830f2c624264e0add14221990a1fffacbae16d');
INSERT INTO public.access_control_entries VALUES ('/buckets/alice-private/collections/notes/records/181aad4a-ee3b-4314-8020-ec90a33fc9a0', 'write', 'basicauth:28f26d796c54eedb9438feeee7830f2c624264e0add14221990a1fffacbae16d');
INSERT INTO public.access_control_entries VALUES ('/buckets/alice-private/collections/inbox', 'record:create', 'system.Authenticated');
INSERT INTO public.access_control_entries VALUES ('/buckets/alice-private/collections/inbox', 'write', 'basicauth:28f26d796c54eedb9438feeee7830f2c624264e0add14221990a1fffacbae16d');
INSERT INTO public.access_control_entries VALUES ('/buckets/alice-private/collections/inbox/records/ffe673fa-f4fd-4142-aa1a-1813e7cc7fe9', 'write', 'basicauth:a50d5cea1d189ce011d8ed18d7a70fe085108ece559248dbf1a66bad77803019');
INSERT INTO public.access_control_entries VALUES ('/buckets/alice-private/collections/notes/records/shown-to-carol', 'read', 'basicauth:75f82e8f2ae477dda4f2b356b7d0e3dbda8d5be3d214d6a60d8afc0910fdc954');
INSERT INTO public.access_control_entries VALUES ('/buckets/alice-private/collections/notes/records/shown-to-carol', 'write', 'basicauth:28f26d796c54eedb9438feeee7830f2c624264e0add14221990a1fffacbae16d');
INSERT INTO public.access_control_entries VALUES ('/buckets/alice-private/collections/bob-box', 'write', 'basicauth:a50d5cea1d189ce011d8ed18d7a70fe085108ece559248dbf1a66bad77803019');
INSERT INTO public.access_control_entries VALUES ('/buckets/alice-private/collections/bob-box/records/b3db87b0-c3f8-4b20-aa20-facf79ccbb1f', 'write', 'basicauth:a50d5cea1d189ce011d8ed18d7a70fe085108ece559248dbf1a66bad77803019');
INSERT INTO public.access_control_entries VALUES ('/buckets/public', 'read', 'system.Everyone');
INSERT INTO public.access_control_entries VALUES ('/buckets/public', 'write', 'basicauth:28f26d796c54eedb9438feeee7830f2c624264e0add14221990a1fffacbae16d');
INSERT INTO public.access_control_entries VALUES ('/buckets/public/collections/news', 'write', 'basicauth:28f26d796c54eedb9438feeee7830f2c624264e0add14221990a1fffacbae16d');
INSERT INTO public.access_control_entries VALUES ('/buckets/members', 'read', 'system.Authenticated');
INSERT INTO public.access_control_entries VALUES ('/buckets/members', 'write', 'basicauth:a50d5cea1d189ce011d8ed18d7a70fe085108ece559248dbf1a66bad77803019');
INSERT INTO public.access_control_entries VALUES ('/buckets/members/collections/forum', 'write', 'basicauth:a50d5cea1d189ce011d8ed18d7a70fe085108ece559248dbf1a66bad77803019');
INSERT INTO public.access_control_entries VALUES ('/buckets/members/collections/forum/records/2fe4bc60-9b4a-4ec2-8476-74cafd398b9a', 'write', 'basicauth:a50d5cea1d189ce011d8ed18d7a70fe085108ece559248dbf1a66bad77803019');
INSERT INTO public.access_control_entries VALUES ('/buckets/members/collections/forum/records/adb1363a-a9da-40e4-b0c4-0282264d8cfc', 'write', 'basicauth:a50d5cea1d189ce011d8ed18d7a70fe085108ece559248dbf1a66bad77803019');
INSERT INTO public.access_control_entries VALUES ('/buckets/members/collections/events', 'write', 'basicauth:a50d5cea1d189ce011d8ed18d7a70fe085108ece559248dbf1a66bad77803019');
INSERT INTO public.access_control_entries VALUES ('/buckets/team', 'write', 'basicauth:28f26d796c54eedb9438feeee7830f2c624264e0add14221990a1fffacbae16d');
INSERT INTO public.access_control_entries VALUES ('/buckets/team/collections/shared', 'read', 'basicauth:a50d5cea1d189ce011d8ed18d7a70fe085108ece559248dbf1a66bad77803019');
INSERT INTO public.access_control_entries VALUES ('/buckets/team/collections/shared', 'write', 'basicauth:28f26d796c54eedb9438feeee7830f2c624264e0add14221990a1fffacbae16d');
INSERT INTO public.access_control_entries VALUES ('/buckets/team/collections/shared/records/529e7cdc-b235-4187-9423-ef4a55061f06', 'write', 'basicauth:28f26d796c54eedb9438feeee7830f2c624264e0add14221990a1fffacbae16d');
INSERT INTO public.access_control_entries VALUES ('/buckets/team/groups/editors', 'write', 'basicauth:28f26d796c54eedb9438feeee7830f2c624264e0add14221990a1fffacbae16d');
INSERT INTO public.access_control_entries VALUES ('/buckets/team/collections/group-shared', 'write', '/buckets/team/groups/editors');
INSERT INTO public.access_control_entries VALUES ('/buckets/team/collections/group-shared', 'write', 'basicauth:28f26d796c54eedb9438feeee7830f2c624264e0add14221990a1fffacbae16d');
INSERT INTO public.access_control_entries VALUES ('/buckets/team/collections/group-shared/records/d1b82532-dc06-45e8-a416-7e0c237a1296', 'write', 'basicauth:28f26d796c54eedb9438feeee7830f2c624264e0add14221990a1fffacbae16d');
INSERT INTO public.access_control_entries VALUES ('/buckets/team/collections/group-shared/records/f200d092-efa5-409d-8bc5-a7d36574787e', 'write', 'basicauth:28f26d796c54eedb9438feeee7830f2c624264e0add14221990a1fffacbae16d');
INSERT INTO public.access_control_entries VALUES ('/buckets/team/collections/secret', 'write', 'basicauth:28f26d796c54eedb9438feeee7830f2c624264e0add14221990a1fffacbae16d');
INSERT INTO public.access_control_entries VALUES ('/buckets/team/collections/secret/records/b8cdeac4-6407-4a57-9b3f-a56c15125eab', 'write', 'basicauth:28f26d796c54eedb9438feeee7830f2c624264e0add14221990a1fffacbae16d');
INSERT INTO public.access_control_entries VALUES ('/buckets/lab', 'read', 'basicauth:a50d5cea1d189ce011d8ed18d7a70fe085108ece559248dbf1a66bad77803019');
INSERT INTO public.access_control_entries VALUES ('/buckets/lab', 'write', 'basicauth:75f82e8f2ae477dda4f2b356b7d0e3dbda8d5be3d214d6a60d8afc0910fdc954');
INSERT INTO public.access_control_entries VALUES ('/buckets/lab/collections/results', 'write', 'basicauth:75f82e8f2ae477dda4f2b356b7d0e3dbda8d5be3d214d6a60d8afc0910fdc954');
INSERT INTO public.access_control_entries VALUES ('/buckets/lab/collections/results/records/f9052201-92fe-4aef-a670-cf05cc592e9b', 'write', 'basicauth:75f82e8f2ae477dda4f2b356b7d0e3dbda8d5be3d214d6a60d8afc0910fdc954');
INSERT INTO public.access_control_entries VALUES ('/buckets/lab/collections/results/records/fc967c23-a76b-4410-9bab-6d6d0548c04f', 'write', 'basicauth:75f82e8f2ae477dda4f2b356b7d0e3dbda8d5be3d214d6a60d8afc0910fdc954');
INSERT INTO public.access_control_entries VALUES ('/buckets/lab/collections/for-alice', 'read', 'basicauth:28f26d796c54eedb9438feeee7830f2c624264e0add14221990a1fffacbae16d');
INSERT INTO public.access_control_entries VALUES ('/buckets/lab/collections/for-alice', 'write', 'basicauth:75f82e8f2ae477dda4f2b356b7d0e3dbda8d5be3d214d6a60d8afc0910fdc954');
INSERT INTO public.access_control_entries VALUES ('/buckets/lab/collections/for-alice/records/f69198ea-2bba-4186-af88-9f03ce19bec7', 'write', 'basicauth:75f82e8f2ae477dda4f2b356b7d0e3dbda8d5be3d214d6a60d8afc0910fdc954');
INSERT INTO public.access_control_entries VALUES ('/buckets/alice-private/collections/notes/records/80c386e5-6768-48ac-9a5a-8f74e2733eb1', 'write', 'basicauth:28f26d796c54eedb9438feeee7830f2c624264e0add14221990a1fffacbae16d');
INSERT INTO public.access_control_entries VALUES ('/buckets/alice-private/collections/bob-box/records/21db0ec5-9117-4df3-9e12-d7be15b8fe3a', 'write', 'basicauth:a50d5cea1d189ce011d8ed18d7a70fe085108ece559248dbf1a66bad77803019');
INSERT INTO public.access_control_entries VALUES ('/buckets/members/collections/forum/records/f48ee414-47f1-4677-962c-b18bd4c6b2f9', 'write', 'basicauth:a50d5cea1d189ce011d8ed18d7a70fe085108ece559248dbf1a66bad77803019');
INSERT INTO public.access_control_entries VALUES ('/buckets/team/collections/secret', 'read', 'basicauth:75f82e8f2ae477dda4f2b356b7d0e3dbda8d5be3d214d6a60d8afc0910fdc954');
INSERT INTO public.access_control_entries VALUES ('/buckets/public/collections/calendar', 'write', 'basicauth:28f26d796c54eedb9438feeee7830f2c624264e0add14221990a1fffacbae16d');
INSERT INTO public.access_control_entries VALUES ('/buckets/public/collections/calendar/records/r1', 'write', 'basicauth:28f26d796c54eedb9438feeee7830f2c624264e0add14221990a1fffacbae16d');
INSERT INTO public.access_control_entries VALUES ('/buckets/public/collections/calendar/records/r2', 'write', 'basicauth:28f26d796c54eedb9438feeee7830f2c624264e0add14221990a1fffacbae16d');


--
-- Data for Name: metadata; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.metadata VALUES ('created_at', '2026-12-07 06:50:01.534234+00');
INSERT INTO public.metadata VALUES ('storage_schema_version', '26');
INSERT INTO public.metadata VALUES ('permission_schema_version', '2');


--
-- Data for Name: objects; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.objects VALUES ('alice-private', '', 'bucket', '2026-12-07 06:50:01.768', '{}', false);
INSERT INTO public.objects VALUES ('notes', '/buckets/alice-private', 'collection', '2026-12-07 06:50:01.807', '{}', false);
INSERT INTO public.objects VALUES ('9a3c6ac4-f875-40cf-9aad-3274d571465a', '/buckets/alice-private/collections/notes', 'record', '2026-12-07 06:50:01.898', '{"title": "notes 0"}', false);
INSERT INTO public.objects VALUES ('181aad4a-ee3b-4314-8020-ec90a33fc9a0', '/buckets/alice-private/collections/notes', 'record', '2026-12-07 06:50:01.934', '{"title": "notes 1"}', false);
INSERT INTO public.objects VALUES ('inbox', '/buckets/alice-private', 'collection', '2026-12-07 06:50:02.03', '{}', false);
INSERT INTO public.objects VALUES ('ffe673fa-f4fd-4142-aa1a-1813e7cc7fe9', '/buckets/alice-private/collections/inbox', 'record', '2026-12-07 06:50:02.067', '{"title": "from bob"}', false);
INSERT INTO public.objects VALUES ('144a22e2-3edb-0c97-8d0d-d7c828159d0f', 'kinto_changes', 'changes', '2026-12-07 06:50:02.067', '{"host": "", "bucket": "alice-private", "_readers": ["basicauth:28f26d796c54eedb9438feeee7830f2c624264e0add14221990a1fffacbae16d"], "_timestamp": 1796626202067, "collection": "inbox"}', false);
INSERT INTO public.objects VALUES ('shown-to-carol', '/buckets/alice-private/collections/notes', 'record', '2026-12-07 06:50:02.098', '{}', false);
INSERT INTO public.objects VALUES ('bob-box', '/buckets/alice-private', 'collection', '2026-12-07 06:50:02.134', '{}', false);
INSERT INTO public.objects VALUES ('b3db87b0-c3f8-4b20-aa20-facf79ccbb1f', '/buckets/alice-private/collections/bob-box', 'record', '2026-12-07 06:50:02.164', '{"title": "bob-box 0"}', false);
INSERT INTO public.objects VALUES ('public', '', 'bucket', '2026-12-07 06:50:02.194', '{}', false);
INSERT INTO public.objects VALUES ('news', '/buckets/public', 'collection', '2026-12-07 06:50:02.222', '{}', false);
INSERT INTO public.objects VALUES ('archive', '/buckets/public', 'collection', '2026-12-07 06:50:02.407', '{"deleted": true}', true);
INSERT INTO public.objects VALUES ('85d2cbfe-3cbf-4c19-2369-4be7b0e2e7f4', 'kinto_changes', 'changes', '2026-12-07 06:50:02.426', '{"host": "", "bucket": "public", "deleted": true, "_readers": ["basicauth:28f26d796c54eedb9438feeee7830f2c624264e0add14221990a1fffacbae16d", "system.Everyone"], "_timestamp": 1796626202426, "collection": "archive"}', false);
INSERT INTO public.objects VALUES ('members', '', 'bucket', '2026-12-07 06:50:02.445', '{}', false);
INSERT INTO public.objects VALUES ('forum', '/buckets/members', 'collection', '2026-12-07 06:50:02.471', '{}', false);
INSERT INTO public.objects VALUES ('2fe4bc60-9b4a-4ec2-8476-74cafd398b9a', '/buckets/members/collections/forum', 'record', '2026-12-07 06:50:02.506', '{"title": "forum 0"}', false);
INSERT INTO public.objects VALUES ('adb1363a-a9da-40e4-b0c4-0282264d8cfc', '/buckets/members/collections/forum', 'record', '2026-12-07 06:50:02.53', '{"title": "forum 1"}', false);
INSERT INTO public.objects VALUES ('events', '/buckets/members', 'collection', '2026-12-07 06:50:02.57', '{}', false);
INSERT INTO public.objects VALUES ('51bcb044-1842-02ab-be9b-f0c82ef28a77', 'kinto_changes', 'changes', '2026-12-07 06:50:02.572', '{"host": "", "bucket": "members", "_readers": ["basicauth:a50d5cea1d189ce011d8ed18d7a70fe085108ece559248dbf1a66bad77803019", "system.Authenticated"], "_timestamp": 1796626202572, "collection": "events"}', false);
INSERT INTO public.objects VALUES ('team', '', 'bucket', '2026-12-07 06:50:02.594', '{}', false);
INSERT INTO public.objects VALUES ('shared', '/buckets/team', 'collection', '2026-12-07 06:50:02.622', '{}', false);
INSERT INTO public.objects VALUES ('529e7cdc-b235-4187-9423-ef4a55061f06', '/buckets/team/collections/shared', 'record', '2026-12-07 06:50:02.66', '{"title": "shared 0"}', false);
INSERT INTO public.objects VALUES ('58610f31-08eb-b8ae-bcf5-8c9e360605dc', 'kinto_changes', 'changes', '2026-12-07 06:50:02.66', '{"host": "", "bucket": "team", "_readers": ["basicauth:28f26d796c54eedb9438feeee7830f2c624264e0add14221990a1fffacbae16d", "basicauth:a50d5cea1d189ce011d8ed18d7a70fe085108ece559248dbf1a66bad77803019"], "_timestamp": 1796626202660, "collection": "shared"}', false);
INSERT INTO public.objects VALUES ('group-shared', '/buckets/team', 'collection', '2026-12-07 06:50:02.731', '{}', false);
INSERT INTO public.objects VALUES ('d1b82532-dc06-45e8-a416-7e0c237a1296', '/buckets/team/collections/group-shared', 'record', '2026-12-07 06:50:02.762', '{"title": "group-shared 0"}', false);
INSERT INTO public.objects VALUES ('f200d092-efa5-409d-8bc5-a7d36574787e', '/buckets/team/collections/group-shared', 'record', '2026-12-07 06:50:02.795', '{"title": "group-shared 1"}', false);
INSERT INTO public.objects VALUES ('b8cdeac4-6407-4a57-9b3f-a56c15125eab', '/buckets/team/collections/secret', 'record', '2026-12-07 06:50:02.871', '{"title": "secret 0"}', false);
INSERT INTO public.objects VALUES ('lab', '', 'bucket', '2026-12-07 06:50:02.902', '{}', false);
INSERT INTO public.objects VALUES ('results', '/buckets/lab', 'collection', '2026-12-07 06:50:02.93', '{}', false);
INSERT INTO public.objects VALUES ('f9052201-92fe-4aef-a670-cf05cc592e9b', '/buckets/lab/collections/results', 'record', '2026-12-07 06:50:02.959', '{"title": "results 0"}', false);
INSERT INTO public.objects VALUES ('35de7b64-d7a1-5517-a10e-84f035c2170e', 'kinto_changes', 'changes', '2026-12-07 06:50:03.319', '{"host": "", "bucket": "alice-private", "_readers": ["basicauth:28f26d796c54eedb9438feeee7830f2c624264e0add14221990a1fffacbae16d"], "_timestamp": 1796626203319, "collection": "notes"}', false);
INSERT INTO public.objects VALUES ('28130485-df19-b4f3-d34c-b6f5774c5555', 'kinto_changes', 'changes', '2026-12-07 06:50:03.344', '{"host": "", "bucket": "alice-private", "_readers": ["basicauth:28f26d796c54eedb9438feeee7830f2c624264e0add14221990a1fffacbae16d", "basicauth:a50d5cea1d189ce011d8ed18d7a70fe085108ece559248dbf1a66bad77803019"], "_timestamp": 1796626203344, "collection": "bob-box"}', false);
INSERT INTO public.objects VALUES ('22d0d592-0cda-e657-6e92-fb24d575b6df', 'kinto_changes', 'changes', '2026-12-07 06:50:03.374', '{"host": "", "bucket": "members", "_readers": ["basicauth:a50d5cea1d189ce011d8ed18d7a70fe085108ece559248dbf1a66bad77803019", "system.Authenticated"], "_timestamp": 1796626203374, "collection": "forum"}', false);
INSERT INTO public.objects VALUES ('871a65dc-0b7f-459f-b444-6d96b8c5024d', '/buckets/public/collections/news', 'record', '2026-12-07 06:50:03.407', '{"deleted": true}', true);
INSERT INTO public.objects VALUES ('993fd6a8-f849-40fa-a409-25f371f55117', '/buckets/public/collections/news', 'record', '2026-12-07 06:50:03.408', '{"deleted": true}', true);
INSERT INTO public.objects VALUES ('c9a1d053-8872-4d7a-bd86-5ddd163bf603', '/buckets/public/collections/news', 'record', '2026-12-07 06:50:03.409', '{"deleted": true}', true);
INSERT INTO public.objects VALUES ('drafts', '/buckets/alice-private', 'collection', '2026-12-07 06:50:03.442', '{"deleted": true}', true);
INSERT INTO public.objects VALUES ('e1501ecb-3437-f9d5-576d-2a60751f6205', 'kinto_changes', 'changes', '2026-12-07 06:50:03.444', '{"host": "", "bucket": "alice-private", "deleted": true, "_readers": ["basicauth:28f26d796c54eedb9438feeee7830f2c624264e0add14221990a1fffacbae16d"], "_timestamp": 1796626203444, "collection": "drafts"}', false);
INSERT INTO public.objects VALUES ('secret', '/buckets/team', 'collection', '2026-12-07 06:50:03.514', '{}', false);
INSERT INTO public.objects VALUES ('adbb8ddb-bd6a-4a75-8c79-dc0d461e9435', 'kinto_changes', 'changes', '2026-12-07 06:50:03.523', '{"host": "", "bucket": "team", "_readers": ["basicauth:28f26d796c54eedb9438feeee7830f2c624264e0add14221990a1fffacbae16d", "basicauth:75f82e8f2ae477dda4f2b356b7d0e3dbda8d5be3d214d6a60d8afc0910fdc954"], "_timestamp": 1796626202871, "collection": "secret"}', false);
INSERT INTO public.objects VALUES ('editors', '/buckets/team', 'group', '2026-12-07 06:50:03.551', '{"members": ["basicauth:a50d5cea1d189ce011d8ed18d7a70fe085108ece559248dbf1a66bad77803019", "basicauth:75f82e8f2ae477dda4f2b356b7d0e3dbda8d5be3d214d6a60d8afc0910fdc954"]}', false);
INSERT INTO public.objects VALUES ('624634df-d425-aee0-42ca-a6aea7b95616', 'kinto_changes', 'changes', '2026-12-07 06:50:03.558', '{"host": "", "bucket": "team", "_readers": ["/buckets/team/groups/editors", "basicauth:28f26d796c54eedb9438feeee7830f2c624264e0add14221990a1fffacbae16d"], "_timestamp": 1796626202795, "collection": "group-shared"}', false);
INSERT INTO public.objects VALUES ('fc967c23-a76b-4410-9bab-6d6d0548c04f', '/buckets/lab/collections/results', 'record', '2026-12-07 06:50:02.992', '{"title": "results 1"}', false);
INSERT INTO public.objects VALUES ('20fe35cc-dcfa-0c8f-c67f-65d89f409388', 'kinto_changes', 'changes', '2026-12-07 06:50:02.992', '{"host": "", "bucket": "lab", "_readers": ["basicauth:75f82e8f2ae477dda4f2b356b7d0e3dbda8d5be3d214d6a60d8afc0910fdc954", "basicauth:a50d5cea1d189ce011d8ed18d7a70fe085108ece559248dbf1a66bad77803019"], "_timestamp": 1796626202992, "collection": "results"}', false);
INSERT INTO public.objects VALUES ('for-alice', '/buckets/lab', 'collection', '2026-12-07 06:50:03.022', '{}', false);
INSERT INTO public.objects VALUES ('f69198ea-2bba-4186-af88-9f03ce19bec7', '/buckets/lab/collections/for-alice', 'record', '2026-12-07 06:50:03.055', '{"title": "for-alice 0"}', false);
INSERT INTO public.objects VALUES ('32a56fb8-3d2d-731a-c5eb-751a73ae6671', 'kinto_changes', 'changes', '2026-12-07 06:50:03.055', '{"host": "", "bucket": "lab", "_readers": ["basicauth:28f26d796c54eedb9438feeee7830f2c624264e0add14221990a1fffacbae16d", "basicauth:75f82e8f2ae477dda4f2b356b7d0e3dbda8d5be3d214d6a60d8afc0910fdc954", "basicauth:a50d5cea1d189ce011d8ed18d7a70fe085108ece559248dbf1a66bad77803019"], "_timestamp": 1796626203055, "collection": "for-alice"}', false);
INSERT INTO public.objects VALUES ('80c386e5-6768-48ac-9a5a-8f74e2733eb1', '/buckets/alice-private/collections/notes', 'record', '2026-12-07 06:50:03.319', '{"title": "late note"}', false);
INSERT INTO public.objects VALUES ('21db0ec5-9117-4df3-9e12-d7be15b8fe3a', '/buckets/alice-private/collections/bob-box', 'record', '2026-12-07 06:50:03.344', '{"title": "late"}', false);
INSERT INTO public.objects VALUES ('f48ee414-47f1-4677-962c-b18bd4c6b2f9', '/buckets/members/collections/forum', 'record', '2026-12-07 06:50:03.374', '{"title": "late post"}', false);
INSERT INTO public.objects VALUES ('cf793010-afbc-642b-e3ab-d01daeda864d', 'kinto_changes', 'changes', '2026-12-07 06:50:03.409', '{"host": "", "bucket": "public", "_readers": ["basicauth:28f26d796c54eedb9438feeee7830f2c624264e0add14221990a1fffacbae16d", "system.Everyone"], "_timestamp": 1796626203409, "collection": "news"}', false);
INSERT INTO public.objects VALUES ('doomed', '', 'bucket', '2026-12-07 06:50:03.466', '{"deleted": true}', true);
INSERT INTO public.objects VALUES ('b95a1e2a-7f15-9bd2-137b-cb668efef7e9', 'kinto_changes', 'changes', '2026-12-07 06:50:03.482', '{"host": "", "bucket": "doomed", "deleted": true, "_readers": ["/buckets/doomed/groups/crew", "basicauth:a50d5cea1d189ce011d8ed18d7a70fe085108ece559248dbf1a66bad77803019"], "_timestamp": 1796626203482, "collection": "b"}', false);
INSERT INTO public.objects VALUES ('6573e0de-d614-6575-d0f1-0b4e766126ed', 'kinto_changes', 'changes', '2026-12-07 06:50:03.483', '{"host": "", "bucket": "doomed", "deleted": true, "_readers": ["basicauth:a50d5cea1d189ce011d8ed18d7a70fe085108ece559248dbf1a66bad77803019"], "_timestamp": 1796626203483, "collection": "a"}', false);
INSERT INTO public.objects VALUES ('calendar', '/buckets/public', 'collection', '2026-12-07 06:50:03.583', '{}', false);
INSERT INTO public.objects VALUES ('r1', '/buckets/public/collections/calendar', 'record', '2026-12-07 06:50:03.61', '{}', false);
INSERT INTO public.objects VALUES ('r2', '/buckets/public/collections/calendar', 'record', '2026-12-07 06:50:03.627', '{}', false);
INSERT INTO public.objects VALUES ('77d27c0b-a972-0c62-e0b9-67d313bc5b41', 'kinto_changes', 'changes', '2026-12-07 06:50:03.627', '{"host": "", "bucket": "public", "_readers": ["basicauth:28f26d796c54eedb9438feeee7830f2c624264e0add14221990a1fffacbae16d", "system.Everyone"], "_timestamp": 1796626203627, "collection": "calendar"}', false);


--
-- Data for Name: timestamps; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.timestamps VALUES ('', 'bucket', '2026-12-07 06:50:01.735006');
INSERT INTO public.timestamps VALUES ('/buckets/alice-private', 'collection', '2026-12-07 06:50:01.800002');
INSERT INTO public.timestamps VALUES ('/buckets/alice-private/collections/notes', 'record', '2026-12-07 06:50:01.820131');
INSERT INTO public.timestamps VALUES ('/buckets/alice-private/collections/inbox', 'record', '2026-12-07 06:50:02.035698');
INSERT INTO public.timestamps VALUES ('/buckets/alice-private/collections/bob-box', 'record', '2026-12-07 06:50:02.141223');
INSERT INTO public.timestamps VALUES ('/buckets/public', 'collection', '2026-12-07 06:50:02.213996');
INSERT INTO public.timestamps VALUES ('/buckets/public/collections/news', 'record', '2026-12-07 06:50:02.230566');
INSERT INTO public.timestamps VALUES ('/buckets/members', 'collection', '2026-12-07 06:50:02.465993');
INSERT INTO public.timestamps VALUES ('/buckets/members/collections/forum', 'record', '2026-12-07 06:50:02.482807');
INSERT INTO public.timestamps VALUES ('/buckets/members/collections/events', 'record', '2026-12-07 06:50:02.57187');
INSERT INTO public.timestamps VALUES ('/buckets/team', 'collection', '2026-12-07 06:50:02.618422');
INSERT INTO public.timestamps VALUES ('/buckets/team/collections/shared', 'record', '2026-12-07 06:50:02.630906');
INSERT INTO public.timestamps VALUES ('/buckets/team', 'group', '2026-12-07 06:50:02.681994');
INSERT INTO public.timestamps VALUES ('/buckets/team/collections/group-shared', 'record', '2026-12-07 06:50:02.742467');
INSERT INTO public.timestamps VALUES ('/buckets/team/collections/secret', 'record', '2026-12-07 06:50:02.842249');
INSERT INTO public.timestamps VALUES ('/buckets/lab', 'collection', '2026-12-07 06:50:02.922309');
INSERT INTO public.timestamps VALUES ('/buckets/lab/collections/results', 'record', '2026-12-07 06:50:02.935467');
INSERT INTO public.timestamps VALUES ('/buckets/lab/collections/for-alice', 'record', '2026-12-07 06:50:03.030655');
INSERT INTO public.timestamps VALUES ('/buckets/public/collections/calendar', 'record', '2026-12-07 06:50:03.595155');


--
-- Data for Name: user_principals; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.user_principals VALUES ('basicauth:a50d5cea1d189ce011d8ed18d7a70fe085108ece559248dbf1a66bad77803019', '/buckets/team/groups/editors');
INSERT INTO public.user_principals VALUES ('basicauth:75f82e8f2ae477dda4f2b356b7d0e3dbda8d5be3d214d6a60d8afc0910fdc954', '/buckets/doomed/groups/crew');
INSERT INTO public.user_principals VALUES ('basicauth:75f82e8f2ae477dda4f2b356b7d0e3dbda8d5be3d214d6a60d8afc0910fdc954', '/buckets/team/groups/editors');


--
-- Name: access_control_entries access_control_entries_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.access_control_entries
    ADD CONSTRAINT access_control_entries_pkey PRIMARY KEY (object_id, permission, principal);


--
-- Name: objects objects_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.objects
    ADD CONSTRAINT objects_pkey PRIMARY KEY (id, parent_id, resource_name);


--
-- Name: timestamps timestamps_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.timestamps
    ADD CONSTRAINT timestamps_pkey PRIMARY KEY (parent_id, resource_name);


--
-- Name: user_principals user_principals_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.user_principals
    ADD CONSTRAINT user_principals_pkey PRIMARY KEY (user_id, principal);


--
-- Name: idx_access_control_entries_object_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_access_control_entries_object_id ON public.access_control_entries USING btree (object_id);


--
-- Name: idx_access_control_entries_permission; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_access_control_entries_permission ON public.access_control_entries USING btree (permission);


--
-- Name: idx_access_control_entries_principal; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_access_control_entries_principal ON public.access_control_entries USING btree (principal);


--
-- Name: idx_objects_history_userid_and_resourcename; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_objects_history_userid_and_resourcename ON public.objects USING btree (((data -> 'user_id'::text)), ((data -> 'resource_name'::text))) WHERE (resource_name = 'history'::text);


--
-- Name: idx_objects_last_modified_epoch; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_objects_last_modified_epoch ON public.objects USING btree (public.as_epoch(last_modified));


--
-- Name: idx_objects_parent_id_record_last_modified; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_objects_parent_id_record_last_modified ON public.objects USING btree (parent_id, last_modified DESC) WHERE (resource_name = 'record'::text);


--
-- Name: idx_objects_parent_id_resource_name_last_modified; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX idx_objects_parent_id_resource_name_last_modified ON public.objects USING btree (parent_id, resource_name, last_modified DESC);


--
-- Name: idx_objects_resource_name_parent_id_deleted; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_objects_resource_name_parent_id_deleted ON public.objects USING btree (resource_name, parent_id, deleted);


--
-- Name: objects tgr_objects_last_modified; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER tgr_objects_last_modified BEFORE INSERT OR UPDATE OF data ON public.objects FOR EACH ROW EXECUTE FUNCTION public.bump_timestamp();


--
-- PostgreSQL database dump complete
--


