/*
 * nsdn's installed CNI plugin: the thin half of the thick-plugin pattern (as Multus and
 * Cilium do it). It forwards one CNI call (its type, the CNI environment, stdin) to the
 * resident agent (`nsdn cni agent`) on a unix socket and relays the reply (stdout, stderr,
 * exit status). When no agent answers, or the agent declines (it runs in another network
 * namespace than this call, or sees another namespace at CNI_NETNS), it runs the call in a
 * Node process instead: the same plugin code, so both ways give the same results.
 *
 * Next to the executable, nsdn-cni.conf holds three lines: the node binary, the plugin
 * entry (dist/src/cni/fallback.js) and the agent's socket. NSDN_CNI_SOCKET overrides the socket.
 *
 * Wire format. Request: u32le length of the environment block, the block (KEY=VALUE\0...),
 * then stdin to EOF (write side shut). Reply: u8 status (255: declined, nothing done),
 * u32le length of stdout, stdout, then stderr to EOF.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

extern char **environ;

struct buf {
	char *p;
	size_t len, cap;
};

static void put(struct buf *b, const void *data, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 4096;
		b->p = realloc(b->p, b->cap);
		if (!b->p) {
			perror("nsdn-cni-shim: realloc");
			exit(1);
		}
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

static void read_all(int fd, struct buf *b)
{
	char chunk[65536];
	ssize_t n;
	while ((n = read(fd, chunk, sizeof chunk)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		put(b, chunk, (size_t)n);
	}
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The three lines of nsdn-cni.conf beside the executable. */
static char conf_node[PATH_MAX], conf_main[PATH_MAX], conf_sock[PATH_MAX];

static void read_conf(void)
{
	char exe[PATH_MAX], path[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n < 0) {
		perror("nsdn-cni-shim: readlink /proc/self/exe");
		exit(1);
	}
	exe[n] = 0;
	snprintf(path, sizeof path, "%s/nsdn-cni.conf", dirname(exe));
	FILE *f = fopen(path, "r");
	if (!f || !fgets(conf_node, sizeof conf_node, f) || !fgets(conf_main, sizeof conf_main, f) ||
	    !fgets(conf_sock, sizeof conf_sock, f)) {
		fprintf(stderr, "nsdn-cni-shim: cannot read %s\n", path);
		exit(1);
	}
	fclose(f);
	conf_node[strcspn(conf_node, "\n")] = 0;
	conf_main[strcspn(conf_main, "\n")] = 0;
	conf_sock[strcspn(conf_sock, "\n")] = 0;
}

/* Run the call in Node, with the stdin already read fed back through a memfd. */
static void fallback(const char *type, struct buf *in)
{
	int fd = memfd_create("nsdn-cni-stdin", 0);
	if (fd < 0 || write_all(fd, in->p ? in->p : "", in->len) < 0 || lseek(fd, 0, SEEK_SET) < 0 ||
	    dup2(fd, 0) < 0) {
		perror("nsdn-cni-shim: memfd");
		exit(1);
	}
	close(fd);
	/* The plugin opens no TLS connection, and with this set Node parses the whole CA bundle
	   before anything else: 60-80 ms of CPU per call, measured here. */
	unsetenv("NODE_EXTRA_CA_CERTS");
	char *argv[] = {conf_node, conf_main, (char *)type, NULL};
	execv(conf_node, argv);
	fprintf(stderr, "nsdn-cni-shim: cannot run %s: %s\n", conf_node, strerror(errno));
	exit(1);
}

static void ns_id(const char *path, const char *key, struct buf *env)
{
	struct stat st;
	char line[96];
	if (stat(path, &st) < 0)
		return;
	int n = snprintf(line, sizeof line, "%s=%lu:%lu", key, (unsigned long)st.st_dev,
			 (unsigned long)st.st_ino);
	put(env, line, (size_t)n + 1);
}

/* The config's "cniVersion" (digits and dots only), else the latest: error JSON carries one. */
static const char *conf_version(struct buf *in)
{
	static char v[16];
	put(in, "", 1); /* NUL-terminate for the string search */
	in->len--;
	const char *k = strstr(in->p, "\"cniVersion\"");
	const char *q = k ? strchr(k + 12, '"') : NULL;
	size_t n = q ? strspn(q + 1, "0123456789.") : 0;
	if (!q || n == 0 || n >= sizeof v || q[1 + n] != '"')
		return "1.1.0";
	memcpy(v, q + 1, n);
	v[n] = 0;
	return v;
}

/* Which variables the call carries to the agent. */
static int forwarded(const char *kv)
{
	return strncmp(kv, "CNI_", 4) == 0 || strncmp(kv, "NSDN_EXPLAIN=", 13) == 0 ||
	       strncmp(kv, "NSDN_LOG_LEVEL=", 15) == 0;
}

int main(int argc, char **argv)
{
	(void)argc;
	const char *type = basename(argv[0]);
	struct buf in = {0}, env = {0}, out = {0};
	read_conf();
	read_all(0, &in);

	const char *sock_path = getenv("NSDN_CNI_SOCKET");
	if (!sock_path || !*sock_path)
		sock_path = conf_sock;
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (s < 0 || strlen(sock_path) >= sizeof sa.sun_path)
		fallback(type, &in);
	strcpy(sa.sun_path, sock_path);
	if (connect(s, (struct sockaddr *)&sa, sizeof sa) < 0)
		fallback(type, &in);

	char line[PATH_MAX + 16];
	int n = snprintf(line, sizeof line, "NSDN_PLUGIN=%s", type);
	put(&env, line, (size_t)n + 1);
	ns_id("/proc/self/ns/net", "NSDN_NETNS_ID", &env);
	const char *target = getenv("CNI_NETNS");
	if (target && *target)
		ns_id(target, "NSDN_TARGET_ID", &env);
	for (char **e = environ; *e; e++)
		if (forwarded(*e))
			put(&env, *e, strlen(*e) + 1);
	uint8_t len[4] = {env.len & 0xff, (env.len >> 8) & 0xff, (env.len >> 16) & 0xff,
			  (env.len >> 24) & 0xff};
	if (write_all(s, (char *)len, 4) < 0 || write_all(s, env.p, env.len) < 0 ||
	    write_all(s, in.p ? in.p : "", in.len) < 0)
		fallback(type, &in); /* the agent read nothing whole: it did nothing */
	shutdown(s, SHUT_WR);
	read_all(s, &out);
	close(s);

	if (out.len >= 1 && (uint8_t)out.p[0] == 255)
		fallback(type, &in);
	if (out.len < 5) {
		/* The agent died during the call: report it in the spec's error shape. */
		printf("{\"cniVersion\":\"%s\",\"code\":999,"
		       "\"msg\":\"the nsdn agent closed the connection during the call\"}\n",
		       conf_version(&in));
		return 1;
	}
	uint32_t olen = (uint8_t)out.p[1] | (uint8_t)out.p[2] << 8 | (uint8_t)out.p[3] << 16 |
			(uint32_t)(uint8_t)out.p[4] << 24;
	if (olen > out.len - 5)
		olen = (uint32_t)(out.len - 5);
	write_all(1, out.p + 5, olen);
	write_all(2, out.p + 5 + olen, out.len - 5 - olen);
	return (uint8_t)out.p[0];
}
