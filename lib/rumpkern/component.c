/*
 * The component table.  RK_COMPONENT() puts a pointer to each descriptor
 * into the "rk_components" section; the linker gathers them from every
 * object it links and names the bounds __start_rk_components and
 * __stop_rk_components.  The table is constant: the only "global" here.
 *
 * Linking: a component in an object file given to the link (a test, a
 * server's own sources) always lands in the table.  A component inside a
 * static library does not: nothing refers to its object, so the linker
 * leaves it out.  Such libraries must be linked whole (meson: link_whole,
 * or declare_dependency(link_whole : ...)).
 */
#include <errno.h>
#include <string.h>

#include "rk_int.h"

/* Weak, so that a program linking no component at all still links: the
 * bounds are then both NULL and the table is empty. */
extern const struct rk_component *const __start_rk_components[]
	__attribute__((weak));
extern const struct rk_component *const __stop_rk_components[]
	__attribute__((weak));

/*
 * A descriptor of another version is skipped without a word here: this
 * runs for every device added.  rk_component_create says it once, when the
 * component is asked for by name.
 */
static bool
component_usable(const struct rk_component *c)
{
	return c != NULL && c->name != NULL &&
	       c->version == RK_COMPONENT_VERSION;
}

/* By name, whatever its version. */
static const struct rk_component *
find_any(const char *name)
{
	const struct rk_component *const *p;

	if (__start_rk_components == NULL || __stop_rk_components == NULL)
		return NULL;
	for (p = __start_rk_components; p < __stop_rk_components; p++)
		if (*p != NULL && (*p)->name != NULL &&
		    strcmp((*p)->name, name) == 0)
			return *p;
	return NULL;
}

int
rk_component_foreach(int (*fn)(const struct rk_component *, void *),
                     void *arg)
{
	const struct rk_component *const *p;
	int r;

	if (__start_rk_components == NULL || __stop_rk_components == NULL)
		return 0;
	for (p = __start_rk_components; p < __stop_rk_components; p++) {
		if (!component_usable(*p))
			continue;
		r = fn(*p, arg);
		if (r != 0)
			return r;
	}
	return 0;
}

struct find_arg {
	const char *name;
	const struct rk_component *found;
};

static int
find_cb(const struct rk_component *c, void *arg)
{
	struct find_arg *fa = arg;

	if (strcmp(c->name, fa->name) != 0)
		return 0;
	fa->found = c;
	return 1;
}

const struct rk_component *
rk_component_find(const char *name)
{
	struct find_arg fa = { .name = name, .found = NULL };

	if (name == NULL)
		return NULL;
	(void)rk_component_foreach(find_cb, &fa);
	return fa.found;
}

int
rk_component_create(struct rk_runtime *rt, const char *component,
                    const char *instance, const char *args)
{
	const struct rk_component *c;

	c = rk_component_find(component);
	if (c == NULL) {
		if (component != NULL && find_any(component) != NULL)
			rk_err(rt, "component %s is built for another "
			       "version of rumpkern (want %u)", component,
			       RK_COMPONENT_VERSION);
		else
			rk_err(rt, "no component named %s",
			       component != NULL ? component : "(null)");
		return ENOENT;
	}
	if (c->create == NULL) {
		rk_err(rt, "component %s does not create devices", c->name);
		return EOPNOTSUPP;
	}
	return c->create(rt, instance, args);
}
