-- The whole PiqueTickets domain: shows, tickets, orders, payments, check-in and jobs.
--
-- Money is NUMERIC(10,2) everywhere; never a float. Times are TIMESTAMPTZ.
-- Table names follow the original's models loosely (Show, Ticket, TicketOrder...) but in
-- plural snake case; JSON field names in the API are what must match the original, not these.

-- ---------------------------------------------------------------- users, auth, producers

CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    username      TEXT NOT NULL,
    email         TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL,
    first_name    TEXT NOT NULL DEFAULT '',
    last_name     TEXT NOT NULL DEFAULT '',
    is_staff      BOOLEAN NOT NULL DEFAULT FALSE,
    is_active     BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_login    TIMESTAMPTZ
);
CREATE UNIQUE INDEX users_username_lower ON users (lower(username));

-- DRF TokenAuthentication: one opaque key per login, sent as `Authorization: Token <key>`.
CREATE TABLE auth_tokens (
    key        TEXT PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX auth_tokens_user ON auth_tokens (user_id);

CREATE TABLE producers (
    id                         BIGSERIAL PRIMARY KEY,
    name                       TEXT NOT NULL,
    slug                       TEXT NOT NULL UNIQUE,
    description                TEXT NOT NULL DEFAULT '',
    image                      TEXT,
    website                    TEXT,
    contact_email              TEXT NOT NULL DEFAULT '',
    stripe_account_id          TEXT UNIQUE,
    stripe_onboarding_complete BOOLEAN NOT NULL DEFAULT FALSE,
    created_at                 TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- A user may act for at most one producer (the portal's login); staff users need none.
CREATE TABLE producer_members (
    producer_id BIGINT NOT NULL REFERENCES producers (id) ON DELETE CASCADE,
    user_id     BIGINT NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (producer_id, user_id)
);

-- ---------------------------------------------------------------- venues, performers, shows

CREATE TABLE venues (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL,
    address     TEXT NOT NULL DEFAULT '',
    city        TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT '',
    postal_code TEXT NOT NULL DEFAULT '',
    country     TEXT NOT NULL DEFAULT 'US',
    capacity    INTEGER CHECK (capacity IS NULL OR capacity >= 0),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    search      TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', name || ' ' || city)) STORED
);
CREATE INDEX venues_city ON venues (city);
CREATE INDEX venues_search ON venues USING GIN (search);

CREATE TABLE performers (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT NOT NULL,
    bio        TEXT NOT NULL DEFAULT '',
    image      TEXT,
    website    TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    search     TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', name)) STORED
);
CREATE INDEX performers_search ON performers USING GIN (search);

CREATE TABLE shows (
    id                   BIGSERIAL PRIMARY KEY,
    title                TEXT NOT NULL,
    slug                 TEXT NOT NULL UNIQUE,
    description          TEXT NOT NULL DEFAULT '',
    door_time            TIMESTAMPTZ,
    start_time           TIMESTAMPTZ NOT NULL,
    end_time             TIMESTAMPTZ,
    time_zone            TEXT NOT NULL DEFAULT 'America/Chicago',
    age_restriction      TEXT NOT NULL DEFAULT '',
    image                TEXT,
    banner_image         TEXT,
    square_image         TEXT,
    featured_video       TEXT,
    facebook_campaign_id TEXT,
    published            BOOLEAN NOT NULL DEFAULT FALSE,
    refund_policy        TEXT NOT NULL DEFAULT '',
    is_deleted           BOOLEAN NOT NULL DEFAULT FALSE,
    deleted_at           TIMESTAMPTZ,
    draft_created_at     TIMESTAMPTZ,
    draft_updated_at     TIMESTAMPTZ,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    venue_id             BIGINT NOT NULL REFERENCES venues (id),
    producer_id          BIGINT NOT NULL REFERENCES producers (id),
    author_id            BIGINT REFERENCES users (id),
    search               TSVECTOR GENERATED ALWAYS AS (
                             setweight(to_tsvector('simple', title), 'A') ||
                             setweight(to_tsvector('simple', description), 'B')) STORED,
    CHECK (end_time IS NULL OR end_time >= start_time),
    CHECK (NOT is_deleted OR deleted_at IS NOT NULL)
);
-- The public list is "published, not deleted, by start time": a partial index serves it,
-- including the `start_time__gt/__lt` range filters.
CREATE INDEX shows_public_start ON shows (start_time, id) WHERE published AND NOT is_deleted;
CREATE INDEX shows_producer ON shows (producer_id);
CREATE INDEX shows_venue ON shows (venue_id);
CREATE INDEX shows_search ON shows USING GIN (search);

CREATE TABLE show_performers (
    show_id      BIGINT NOT NULL REFERENCES shows (id) ON DELETE CASCADE,
    performer_id BIGINT NOT NULL REFERENCES performers (id) ON DELETE CASCADE,
    position     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (show_id, performer_id)
);
CREATE INDEX show_performers_performer ON show_performers (performer_id);

-- Ticket = a ticket type (tier) of a show. `sold` and `held` are counters kept by the
-- checkout strategies in the same transaction as the order rows they summarise, so the
-- invariant below is enforced by the database itself and no strategy can oversell.
CREATE TABLE tickets (
    id                BIGSERIAL PRIMARY KEY,
    show_id           BIGINT NOT NULL REFERENCES shows (id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    description       TEXT NOT NULL DEFAULT '',
    quantity          INTEGER NOT NULL CHECK (quantity >= 0),
    price             NUMERIC(10, 2) NOT NULL CHECK (price >= 0),
    is_donation_based BOOLEAN NOT NULL DEFAULT FALSE,
    max_per_order     INTEGER NOT NULL DEFAULT 20 CHECK (max_per_order > 0),
    position          INTEGER NOT NULL DEFAULT 0,
    sold              INTEGER NOT NULL DEFAULT 0 CHECK (sold >= 0),
    held              INTEGER NOT NULL DEFAULT 0 CHECK (held >= 0),
    author_id         BIGINT REFERENCES users (id),
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT tickets_no_oversell CHECK (sold + held <= quantity)
);
CREATE INDEX tickets_show ON tickets (show_id, position, id);

CREATE TABLE promo_codes (
    id            BIGSERIAL PRIMARY KEY,
    show_id       BIGINT NOT NULL REFERENCES shows (id) ON DELETE CASCADE,
    code          TEXT NOT NULL,
    discount      NUMERIC(10, 2) NOT NULL CHECK (discount >= 0),
    discount_type TEXT NOT NULL DEFAULT 'percent' CHECK (discount_type IN ('percent', 'amount')),
    max_uses      INTEGER CHECK (max_uses IS NULL OR max_uses >= 0),
    uses          INTEGER NOT NULL DEFAULT 0 CHECK (uses >= 0),
    valid_from    TIMESTAMPTZ,
    valid_until   TIMESTAMPTZ,
    is_active     BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (discount_type <> 'percent' OR discount <= 100),
    CHECK (max_uses IS NULL OR uses <= max_uses)
);
-- Codes are case-insensitive and unique per show.
CREATE UNIQUE INDEX promo_codes_show_code ON promo_codes (show_id, upper(code));
CREATE INDEX promo_codes_code ON promo_codes (upper(code));

CREATE TABLE page_designs (
    id               BIGSERIAL PRIMARY KEY,
    show_id          BIGINT NOT NULL UNIQUE REFERENCES shows (id) ON DELETE CASCADE,
    primary_color    TEXT NOT NULL DEFAULT '#000000',
    secondary_color  TEXT NOT NULL DEFAULT '#ffffff',
    background_image TEXT
);

CREATE TABLE featured_shows (
    id         BIGSERIAL PRIMARY KEY,
    show_id    BIGINT NOT NULL REFERENCES shows (id) ON DELETE CASCADE,
    position   INTEGER NOT NULL DEFAULT 0,
    starts_at  TIMESTAMPTZ,
    ends_at    TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX featured_shows_position ON featured_shows (position, id);

-- ---------------------------------------------------------------- orders and payments

-- Order states: pending -> paid | cancelled | expired; paid -> refunded.
-- A pending order *is* the seat hold: its lines are counted in tickets.held
-- until it is paid (moved to sold), cancelled or expired (released).
CREATE TABLE orders (
    id                BIGSERIAL PRIMARY KEY,
    uuid              UUID NOT NULL UNIQUE,
    show_id           BIGINT NOT NULL REFERENCES shows (id),
    order_email       TEXT NOT NULL,
    order_name        TEXT NOT NULL,
    status            TEXT NOT NULL DEFAULT 'pending'
                          CHECK (status IN ('pending', 'paid', 'cancelled', 'expired', 'refunded')),
    promo_code_id     BIGINT REFERENCES promo_codes (id),
    subtotal          NUMERIC(10, 2) NOT NULL CHECK (subtotal >= 0),
    discount          NUMERIC(10, 2) NOT NULL DEFAULT 0 CHECK (discount >= 0),
    total             NUMERIC(10, 2) NOT NULL CHECK (total >= 0),
    currency          TEXT NOT NULL DEFAULT 'usd',
    checkout_strategy TEXT NOT NULL DEFAULT 'reservation',
    session_id        TEXT UNIQUE,
    payment_intent_id TEXT,
    expires_at        TIMESTAMPTZ NOT NULL,
    paid_at           TIMESTAMPTZ,
    cancelled_at      TIMESTAMPTZ,
    refunded_at       TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (total <= subtotal)
);
CREATE INDEX orders_show ON orders (show_id, created_at);
CREATE INDEX orders_pending_expiry ON orders (expires_at) WHERE status = 'pending';
CREATE INDEX orders_email ON orders (lower(order_email));

-- TicketOrder: one ticket type x quantity inside an order, price snapshotted at purchase.
CREATE TABLE order_lines (
    id               BIGSERIAL PRIMARY KEY,
    uuid             UUID NOT NULL UNIQUE,
    order_id         BIGINT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    ticket_id        BIGINT NOT NULL REFERENCES tickets (id),
    quantity         INTEGER NOT NULL CHECK (quantity > 0),
    price_per_ticket NUMERIC(10, 2) NOT NULL CHECK (price_per_ticket >= 0),
    donation_amount  NUMERIC(10, 2) CHECK (donation_amount IS NULL OR donation_amount >= 0),
    discount         NUMERIC(10, 2) NOT NULL DEFAULT 0 CHECK (discount >= 0),
    line_total       NUMERIC(10, 2) NOT NULL CHECK (line_total >= 0)
);
CREATE INDEX order_lines_order ON order_lines (order_id);
CREATE INDEX order_lines_ticket ON order_lines (ticket_id);

-- One attendee per admitted person; its UUID is the QR payload on the PDF ticket.
CREATE TABLE attendees (
    id            BIGSERIAL PRIMARY KEY,
    uuid          UUID NOT NULL UNIQUE,
    order_id      BIGINT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    order_line_id BIGINT NOT NULL REFERENCES order_lines (id) ON DELETE CASCADE,
    show_id       BIGINT NOT NULL REFERENCES shows (id),
    ticket_id     BIGINT NOT NULL REFERENCES tickets (id),
    seq           INTEGER NOT NULL,
    name          TEXT NOT NULL,
    email         TEXT NOT NULL,
    checked_in_at TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Creating attendees twice for the same line is impossible, whatever the caller does.
    UNIQUE (order_line_id, seq)
);
CREATE INDEX attendees_show ON attendees (show_id);
CREATE INDEX attendees_order ON attendees (order_id);

-- Queue checkout strategy: a request accepted with 202 and processed by the `checkout` queue.
CREATE TABLE checkout_requests (
    id         UUID PRIMARY KEY,
    status     TEXT NOT NULL DEFAULT 'processing'
                   CHECK (status IN ('processing', 'completed', 'failed')),
    request    JSONB NOT NULL,
    result     JSONB,
    error      JSONB,
    http_status INTEGER,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Each Stripe event id is processed at most once (webhook idempotency).
CREATE TABLE stripe_events (
    id           TEXT PRIMARY KEY,
    type         TEXT NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    processed_at TIMESTAMPTZ
);

-- Transactional outbox: jobs written in the same transaction as the state change that
-- causes them, relayed to the Redis queues later, so a Redis outage loses nothing.
-- `dedup_key` makes writing the same job twice a no-op.
CREATE TABLE outbox (
    id         BIGSERIAL PRIMARY KEY,
    queue      TEXT NOT NULL CHECK (queue IN ('pdf', 'email', 'checkout', 'maintenance')),
    kind       TEXT NOT NULL,
    payload    JSONB NOT NULL,
    dedup_key  TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    relayed_at TIMESTAMPTZ,
    attempts   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_unrelayed ON outbox (id) WHERE relayed_at IS NULL;

-- ---------------------------------------------------------------- tickets, mail, tracking

-- A generated PDF, keyed by attendee: generating it again is a no-op.
CREATE TABLE ticket_pdfs (
    attendee_uuid  UUID PRIMARY KEY REFERENCES attendees (uuid) ON DELETE CASCADE,
    path           TEXT NOT NULL,
    download_token TEXT NOT NULL UNIQUE,
    bytes          INTEGER NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One row per email that should exist, keyed by (order, template): sending is exactly-once
-- in effect even though jobs are delivered at least once.
CREATE TABLE email_messages (
    id         BIGSERIAL PRIMARY KEY,
    token      TEXT NOT NULL UNIQUE,
    order_id   BIGINT REFERENCES orders (id) ON DELETE CASCADE,
    template   TEXT NOT NULL,
    to_email   TEXT NOT NULL,
    subject    TEXT NOT NULL DEFAULT '',
    links      JSONB NOT NULL DEFAULT '[]',
    status     TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at    TIMESTAMPTZ,
    UNIQUE (order_id, template)
);

CREATE TABLE email_events (
    id         BIGSERIAL PRIMARY KEY,
    message_id BIGINT NOT NULL REFERENCES email_messages (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('open', 'click')),
    url        TEXT,
    ip         TEXT,
    user_agent TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX email_events_message ON email_events (message_id, kind);

CREATE TABLE subscribers (
    id         BIGSERIAL PRIMARY KEY,
    email      TEXT NOT NULL,
    name       TEXT NOT NULL DEFAULT '',
    source     TEXT NOT NULL DEFAULT 'website',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX subscribers_email ON subscribers (lower(email));

-- A per-show link for door staff: no producer login needed, revocable, expiring.
CREATE TABLE checkin_links (
    id         BIGSERIAL PRIMARY KEY,
    show_id    BIGINT NOT NULL REFERENCES shows (id) ON DELETE CASCADE,
    token      TEXT NOT NULL UNIQUE,
    created_by BIGINT REFERENCES users (id),
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX checkin_links_show ON checkin_links (show_id);
