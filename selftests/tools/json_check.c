// SPDX-License-Identifier: MIT
/* Strict JSON parser and key checker for the guest tests (see json_check.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_check.h"

#define MAX_DEPTH 64

struct parser {
	const char *p, *start;
	char *err;
	size_t errlen;
	int depth;
};

static void *fail(struct parser *ps, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (ps->err[0])
		return NULL;	/* keep the first, innermost reason */
	n = snprintf(ps->err, ps->errlen, "at byte %td: ", ps->p - ps->start);
	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < ps->errlen)
		vsnprintf(ps->err + n, ps->errlen - n, fmt, ap);
	va_end(ap);
	return NULL;
}

static void skip_ws(struct parser *ps)
{
	while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')
		ps->p++;
}

static struct jval *new_val(enum jtype t)
{
	struct jval *v = calloc(1, sizeof(*v));

	if (v)
		v->type = t;
	return v;
}

static int hex4(const char *s, unsigned int *out)
{
	*out = 0;
	for (int i = 0; i < 4; i++) {
		char c = s[i];

		*out <<= 4;
		if (c >= '0' && c <= '9')
			*out |= c - '0';
		else if (c >= 'a' && c <= 'f')
			*out |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			*out |= c - 'A' + 10;
		else
			return -EINVAL;
	}
	return 0;
}

/* Appends code point @cp as UTF-8. */
static size_t put_utf8(char *d, unsigned int cp)
{
	if (cp < 0x80) {
		d[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		d[0] = (char)(0xc0 | cp >> 6);
		d[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		d[0] = (char)(0xe0 | cp >> 12);
		d[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		d[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	d[0] = (char)(0xf0 | cp >> 18);
	d[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	d[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	d[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* A string at ps->p (the opening quote), decoded; NULL on error. */
static char *parse_string(struct parser *ps)
{
	const char *s = ++ps->p;
	size_t cap = 0;
	char *out, *d;

	/* Decoded text is never longer than its source. */
	while (s[cap] && s[cap] != '"')
		cap += s[cap] == '\\' && s[cap + 1] ? 2 : 1;
	out = malloc(cap + 1);
	if (!out)
		return fail(ps, "out of memory");
	d = out;
	for (;;) {
		unsigned char c = (unsigned char)*ps->p;

		if (!c) {
			free(out);
			return fail(ps, "unterminated string");
		}
		if (c == '"')
			break;
		if (c < 0x20) {
			free(out);
			return fail(ps, "raw control byte 0x%02x in a string", c);
		}
		if (c != '\\') {
			*d++ = (char)c;
			ps->p++;
			continue;
		}
		ps->p++;
		switch (*ps->p) {
		case '"': *d++ = '"'; break;
		case '\\': *d++ = '\\'; break;
		case '/': *d++ = '/'; break;
		case 'b': *d++ = '\b'; break;
		case 'f': *d++ = '\f'; break;
		case 'n': *d++ = '\n'; break;
		case 'r': *d++ = '\r'; break;
		case 't': *d++ = '\t'; break;
		case 'u': {
			unsigned int cp, lo;

			if (hex4(ps->p + 1, &cp)) {
				free(out);
				return fail(ps, "bad \\u escape");
			}
			ps->p += 4;
			if (cp >= 0xd800 && cp < 0xdc00) {
				if (ps->p[1] != '\\' || ps->p[2] != 'u' ||
				    hex4(ps->p + 3, &lo) || lo < 0xdc00 || lo >= 0xe000) {
					free(out);
					return fail(ps, "unpaired surrogate");
				}
				ps->p += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			} else if (cp >= 0xdc00 && cp < 0xe000) {
				free(out);
				return fail(ps, "unpaired surrogate");
			}
			if (!cp) {
				free(out);
				return fail(ps, "\\u0000 in a string");
			}
			d += put_utf8(d, cp);
			break;
		}
		default:
			free(out);
			return fail(ps, "bad escape");
		}
		ps->p++;
	}
	ps->p++;
	*d = '\0';
	return out;
}

static struct jval *parse_value(struct parser *ps);

static struct jval *parse_number(struct parser *ps)
{
	const char *s = ps->p;
	bool digits_only = true;
	struct jval *v;

	if (*ps->p == '-') {
		digits_only = false;
		ps->p++;
	}
	if (*ps->p == '0') {
		ps->p++;
	} else if (*ps->p >= '1' && *ps->p <= '9') {
		while (*ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	} else {
		return fail(ps, "bad number");
	}
	if (*ps->p == '.') {
		digits_only = false;
		ps->p++;
		if (*ps->p < '0' || *ps->p > '9')
			return fail(ps, "bad fraction");
		while (*ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	}
	if (*ps->p == 'e' || *ps->p == 'E') {
		digits_only = false;
		ps->p++;
		if (*ps->p == '+' || *ps->p == '-')
			ps->p++;
		if (*ps->p < '0' || *ps->p > '9')
			return fail(ps, "bad exponent");
		while (*ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	}
	v = new_val(J_NUM);
	if (!v)
		return fail(ps, "out of memory");
	if (digits_only) {
		errno = 0;
		v->u = strtoull(s, NULL, 10);
		v->is_uint = !errno;
	}
	return v;
}

static bool append(struct jval *v, char *key, struct jval *item)
{
	struct jval **items = realloc(v->items, (v->n + 1) * sizeof(*items));
	char **keys = v->keys;

	if (!items)
		return false;
	v->items = items;
	if (v->type == J_OBJ) {
		keys = realloc(v->keys, (v->n + 1) * sizeof(*keys));
		if (!keys)
			return false;
		v->keys = keys;
		keys[v->n] = key;
	}
	items[v->n++] = item;
	return true;
}

static struct jval *parse_container(struct parser *ps, bool obj)
{
	struct jval *v = new_val(obj ? J_OBJ : J_ARR);
	char close = obj ? '}' : ']';

	if (!v)
		return fail(ps, "out of memory");
	if (++ps->depth > MAX_DEPTH) {
		jfree(v);
		return fail(ps, "nested deeper than %d", MAX_DEPTH);
	}
	ps->p++;
	skip_ws(ps);
	if (*ps->p == close) {
		ps->p++;
		ps->depth--;
		return v;
	}
	for (;;) {
		char *key = NULL;
		struct jval *item;

		skip_ws(ps);
		if (obj) {
			if (*ps->p != '"')
				goto bad;
			key = parse_string(ps);
			if (!key)
				goto bad;
			if (jget(v, key)) {
				fail(ps, "duplicate key \"%s\"", key);
				free(key);
				goto bad;
			}
			skip_ws(ps);
			if (*ps->p != ':') {
				free(key);
				goto bad;
			}
			ps->p++;
		}
		item = parse_value(ps);
		if (!item || !append(v, key, item)) {
			free(key);
			jfree(item);
			goto bad;
		}
		skip_ws(ps);
		if (*ps->p == ',') {
			ps->p++;
			continue;
		}
		if (*ps->p == close) {
			ps->p++;
			ps->depth--;
			return v;
		}
		goto bad;
	}
bad:
	jfree(v);
	return fail(ps, obj ? "bad object" : "bad array");
}

static struct jval *parse_word(struct parser *ps, const char *word, enum jtype t, bool b)
{
	struct jval *v;

	if (strncmp(ps->p, word, strlen(word)))
		return fail(ps, "unexpected '%c'", *ps->p ? *ps->p : '?');
	ps->p += strlen(word);
	v = new_val(t);
	if (!v)
		return fail(ps, "out of memory");
	v->b = b;
	return v;
}

static struct jval *parse_value(struct parser *ps)
{
	struct jval *v;

	skip_ws(ps);
	switch (*ps->p) {
	case '{': return parse_container(ps, true);
	case '[': return parse_container(ps, false);
	case '"':
		v = new_val(J_STR);
		if (!v)
			return fail(ps, "out of memory");
		v->s = parse_string(ps);
		if (!v->s) {
			free(v);
			return NULL;
		}
		return v;
	case 't': return parse_word(ps, "true", J_BOOL, true);
	case 'f': return parse_word(ps, "false", J_BOOL, false);
	case 'n': return parse_word(ps, "null", J_NULL, false);
	case '\0': return fail(ps, "unexpected end");
	default:
		if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
			return parse_number(ps);
		return fail(ps, "unexpected '%c'", *ps->p);
	}
}

struct jval *jparse(const char *text, char *err, size_t errlen)
{
	struct parser ps = { .p = text, .start = text, .err = err, .errlen = errlen };
	struct jval *v;

	err[0] = '\0';
	v = parse_value(&ps);
	if (!v)
		return NULL;
	skip_ws(&ps);
	if (*ps.p) {
		jfree(v);
		return fail(&ps, "trailing bytes");
	}
	return v;
}

void jfree(struct jval *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++) {
		if (v->keys)
			free(v->keys[i]);
		jfree(v->items[i]);
	}
	free(v->keys);
	free(v->items);
	free(v->s);
	free(v);
}

struct jval *jget(const struct jval *v, const char *key)
{
	if (!v || v->type != J_OBJ)
		return NULL;
	for (size_t i = 0; i < v->n; i++)
		if (!strcmp(v->keys[i], key))
			return v->items[i];
	return NULL;
}

static bool type_ok(const struct jval *v, char t, bool nullable)
{
	if (nullable && v->type == J_NULL)
		return true;
	switch (t) {
	case 'n': return v->type == J_NULL;
	case 'b': return v->type == J_BOOL;
	case 'u': return v->type == J_NUM && v->is_uint;
	case 's': return v->type == J_STR;
	case 'a': return v->type == J_ARR;
	case 'o': return v->type == J_OBJ;
	default: return false;
	}
}

/* Whether "key:" starts one of @spec's words. */
static bool spec_has(const char *spec, const char *key)
{
	size_t len = strlen(key);

	for (const char *p = spec; (p = strstr(p, key)); p++)
		if ((p == spec || p[-1] == ' ') && p[len] == ':')
			return true;
	return false;
}

const char *jkeys(const struct jval *v, const char *spec)
{
	static char msg[128];
	size_t want = 0;

	if (!v || v->type != J_OBJ)
		return "not an object";
	for (const char *p = spec; *p;) {
		const char *colon, *end;
		char key[64];
		struct jval *m;
		bool nullable;

		while (*p == ' ')
			p++;
		if (!*p)
			break;
		colon = strchr(p, ':');
		if (!colon || (size_t)(colon - p) >= sizeof(key))
			return "bad spec";
		memcpy(key, p, colon - p);
		key[colon - p] = '\0';
		nullable = colon[2] == '?';
		end = colon + 2 + nullable;
		m = jget(v, key);
		if (!m) {
			snprintf(msg, sizeof(msg), "key \"%s\" missing", key);
			return msg;
		}
		if (!type_ok(m, colon[1], nullable)) {
			snprintf(msg, sizeof(msg), "key \"%s\" is not of type %c%s", key,
				 colon[1], nullable ? "?" : "");
			return msg;
		}
		want++;
		p = end;
	}
	if (v->n == want)
		return NULL;
	for (size_t i = 0; i < v->n; i++) {
		if (!spec_has(spec, v->keys[i])) {
			snprintf(msg, sizeof(msg), "undocumented key \"%s\"", v->keys[i]);
			return msg;
		}
	}
	return "key count differs";
}
