/*
 * The node table: FUSE node ids <-> rumpfs handles, with the kernel's
 * lookup counts.  Two chained hash tables over the same nodes, one keyed
 * by node id (every request), one by handle (every reply that names an
 * object), under one mutex: the work under it is a few pointer chases.
 */
#include <errno.h>
#include <stdlib.h>

#include "rumpfuse.h"

/* As rpc.c defines it. */
struct remap {
	struct rump_fh from, to;
	uint64_t pass;
};

#define INITIAL_BUCKETS 1024u
/* Ids for inode numbers that are taken; far above any ext2 inode. */
#define PRIVATE_ID_BASE (1ull << 62)

static size_t hash64(uint64_t v, size_t nbuckets)
{
	v ^= v >> 33;
	v *= 0xff51afd7ed558ccdull;
	v ^= v >> 33;
	return (size_t)v & (nbuckets - 1);
}

static size_t hash_fh(const struct rump_fh *fh, size_t nbuckets)
{
	return hash64(fh->ino ^ ((uint64_t)fh->gen << 40), nbuckets);
}

static bool fh_equal(const struct rump_fh *a, const struct rump_fh *b)
{
	return a->ino == b->ino && a->gen == b->gen;
}

static struct node *find_id(struct nodetab *t, uint64_t nodeid)
{
	struct node *n = t->by_id[hash64(nodeid, t->nbuckets)];

	while (n != NULL && n->nodeid != nodeid)
		n = n->id_next;
	return n;
}

static struct node *find_fh(struct nodetab *t, const struct rump_fh *fh)
{
	struct node *n = t->by_fh[hash_fh(fh, t->nbuckets)];

	while (n != NULL && !fh_equal(&n->fh, fh))
		n = n->fh_next;
	return n;
}

static void link_node(struct nodetab *t, struct node *n)
{
	size_t i = hash64(n->nodeid, t->nbuckets);
	size_t j = hash_fh(&n->fh, t->nbuckets);

	n->id_next = t->by_id[i];
	t->by_id[i] = n;
	n->fh_next = t->by_fh[j];
	t->by_fh[j] = n;
}

static void unlink_node(struct nodetab *t, struct node *n)
{
	struct node **pp;

	for (pp = &t->by_id[hash64(n->nodeid, t->nbuckets)]; *pp != n;
	     pp = &(*pp)->id_next)
		;
	*pp = n->id_next;
	for (pp = &t->by_fh[hash_fh(&n->fh, t->nbuckets)]; *pp != n;
	     pp = &(*pp)->fh_next)
		;
	*pp = n->fh_next;
}

/* Doubles the tables; on ENOMEM they just stay as they are (slower). */
static void grow(struct nodetab *t)
{
	struct node **by_id, **by_fh, **old_id = t->by_id;
	size_t old_n = t->nbuckets, i;

	by_id = calloc(old_n * 2, sizeof *by_id);
	by_fh = calloc(old_n * 2, sizeof *by_fh);
	if (by_id == NULL || by_fh == NULL) {
		free(by_id);
		free(by_fh);
		return;
	}
	free(t->by_fh);
	t->by_id = by_id;
	t->by_fh = by_fh;
	t->nbuckets = old_n * 2;
	for (i = 0; i < old_n; i++) {
		struct node *n = old_id[i], *next;

		for (; n != NULL; n = next) {
			next = n->id_next;
			link_node(t, n);
		}
	}
	free(old_id);
}

int nodes_init(struct nodetab *t, const struct rump_fh *root)
{
	struct node *n;

	t->nbuckets = INITIAL_BUCKETS;
	t->count = 0;
	t->next_private = PRIVATE_ID_BASE;
	t->by_id = calloc(t->nbuckets, sizeof *t->by_id);
	t->by_fh = calloc(t->nbuckets, sizeof *t->by_fh);
	n = calloc(1, sizeof *n);
	if (t->by_id == NULL || t->by_fh == NULL || n == NULL) {
		free(t->by_id);
		free(t->by_fh);
		free(n);
		return ENOMEM;
	}
	pthread_mutex_init(&t->lock, NULL);
	n->nodeid = FUSE_ROOT_ID;
	n->fh = *root;
	n->nlookup = 1;       /* pinned: the kernel never looks the root up */
	n->mode = S_IFDIR;
	link_node(t, n);
	t->count = 1;
	return 0;
}

void nodes_fini(struct nodetab *t)
{
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct node *n = t->by_id[i], *next;

		for (; n != NULL; n = next) {
			next = n->id_next;
			free(n);
		}
	}
	free(t->by_id);
	free(t->by_fh);
	pthread_mutex_destroy(&t->lock);
}

int nodes_fh_attr(struct nodetab *t, uint64_t nodeid, struct rump_fh *fh,
                  uint32_t *mode, uint32_t *gid)
{
	struct node *n;
	int err = 0;

	pthread_mutex_lock(&t->lock);
	n = find_id(t, nodeid);
	if (n == NULL) {
		err = ESTALE;
	} else {
		*fh = n->fh;
		if (mode != NULL)
			*mode = n->mode;
		if (gid != NULL)
			*gid = n->gid;
	}
	pthread_mutex_unlock(&t->lock);
	return err;
}

int nodes_fh(struct nodetab *t, uint64_t nodeid, struct rump_fh *fh)
{
	return nodes_fh_attr(t, nodeid, fh, NULL, NULL);
}

int nodes_ref(struct nodetab *t, const struct rump_fattr *attr,
              uint64_t *nodeid)
{
	struct node *n;
	int err = 0;

	pthread_mutex_lock(&t->lock);
	n = find_fh(t, &attr->fh);
	if (n == NULL) {
		n = calloc(1, sizeof *n);
		if (n == NULL) {
			err = ENOMEM;
			goto out;
		}
		n->fh = attr->fh;
		n->fh.reserved = 0;
		n->nodeid = attr->fh.ino;
		/* 0 means "no node" to the kernel, 1 is the root. */
		if (n->nodeid <= FUSE_ROOT_ID || n->nodeid >= PRIVATE_ID_BASE ||
		    find_id(t, n->nodeid) != NULL) {
			do
				n->nodeid = t->next_private++;
			while (find_id(t, n->nodeid) != NULL);
		}
		if (t->count >= t->nbuckets)
			grow(t);
		link_node(t, n);
		t->count++;
	}
	n->nlookup++;
	n->mode = attr->mode;
	n->gid = attr->gid;
	*nodeid = n->nodeid;
out:
	pthread_mutex_unlock(&t->lock);
	return err;
}

void nodes_note_attr(struct nodetab *t, uint64_t nodeid,
                     const struct rump_fattr *attr)
{
	struct node *n;

	pthread_mutex_lock(&t->lock);
	n = find_id(t, nodeid);
	if (n != NULL && fh_equal(&n->fh, &attr->fh)) {
		n->mode = attr->mode;
		n->gid = attr->gid;
	}
	pthread_mutex_unlock(&t->lock);
}

void nodes_set_nocaps(struct nodetab *t, uint64_t nodeid, uint64_t until)
{
	struct node *n;

	pthread_mutex_lock(&t->lock);
	if ((n = find_id(t, nodeid)) != NULL)
		n->nocaps_until = until;
	pthread_mutex_unlock(&t->lock);
}

bool nodes_nocaps(struct nodetab *t, uint64_t nodeid, uint64_t now)
{
	struct node *n;
	bool none;

	pthread_mutex_lock(&t->lock);
	n = find_id(t, nodeid);
	none = n != NULL && now < n->nocaps_until;
	pthread_mutex_unlock(&t->lock);
	return none;
}

void nodes_forget(struct nodetab *t, uint64_t nodeid, uint64_t count)
{
	struct node *n;

	if (nodeid == FUSE_ROOT_ID)
		return;
	pthread_mutex_lock(&t->lock);
	n = find_id(t, nodeid);
	if (n != NULL) {
		n->nlookup = count >= n->nlookup ? 0 : n->nlookup - count;
		if (n->nlookup == 0) {
			unlink_node(t, n);
			t->count--;
			free(n);
		}
	}
	pthread_mutex_unlock(&t->lock);
}

void nodes_remap(struct nodetab *t, const struct remap *m, size_t n)
{
	pthread_mutex_lock(&t->lock);
	/* All at once: a new handle may be another node's old one. */
	for (size_t i = 0; i < t->nbuckets; i++)
		t->by_fh[i] = NULL;
	for (size_t i = 0; i < t->nbuckets; i++) {
		for (struct node *nd = t->by_id[i]; nd != NULL;
		     nd = nd->id_next) {
			for (size_t j = 0; j < n; j++) {
				if (fh_equal(&nd->fh, &m[j].from)) {
					nd->fh = m[j].to;
					break;
				}
			}
			size_t k = hash_fh(&nd->fh, t->nbuckets);

			nd->fh_next = t->by_fh[k];
			t->by_fh[k] = nd;
		}
	}
	pthread_mutex_unlock(&t->lock);
}
