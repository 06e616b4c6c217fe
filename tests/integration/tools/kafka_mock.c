/*
 * kafka-mock: librdkafka's mock Kafka cluster as a command, for tests and
 * local runs of the "kafka" channel (there is no Kafka server package).
 *
 *   kafka-mock [--brokers N] [--topic NAME:PARTITIONS[:REPLICAS]]...
 *
 * Prints the bootstrap address ("127.0.0.1:PORT,...") on the first line of
 * stdout, then "ready", and runs until SIGINT/SIGTERM. Commands are read
 * from stdin, one per line (each answered with "ok" or "error: ..."); at
 * the end of stdin it keeps running:
 *   topic_create NAME PARTITIONS [REPLICAS]
 *   push_request_errors API COUNT ERROR...   e.g. Produce 3 NOT_ENOUGH_REPLICAS
 *   clear_request_errors API
 *   broker_down ID|-1     broker_up ID|-1     rtt ID|-1 MS
 *   quit
 * API is a request name (Produce, Fetch, ListOffsets, Metadata,
 * OffsetCommit, OffsetFetch, FindCoordinator, JoinGroup, Heartbeat,
 * LeaveGroup, SyncGroup, InitProducerId) or its number; ERROR is a
 * librdkafka error name (NOT_ENOUGH_REPLICAS, _TRANSPORT, ...) or number.
 *
 * Consumers of the mock need a small fetch.wait.max.ms (e.g. 5): the mock
 * answers an empty fetch only after the full wait. The mock auto-creates
 * topics (4 partitions) on any metadata request naming them.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static const struct {
    const char *name;
    int16_t key;
} g_apis[] = {
    {"Produce", 0},       {"Fetch", 1},           {"ListOffsets", 2},
    {"Metadata", 3},      {"OffsetCommit", 8},    {"OffsetFetch", 9},
    {"FindCoordinator", 10}, {"JoinGroup", 11},   {"Heartbeat", 12},
    {"LeaveGroup", 13},   {"SyncGroup", 14},      {"ApiVersion", 18},
    {"InitProducerId", 22},
};

static int parse_api(const char *s, int16_t *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s && !*end && v >= 0 && v < 100) {
        *out = (int16_t)v;
        return 0;
    }
    for (size_t i = 0; i < sizeof g_apis / sizeof *g_apis; i++)
        if (strcasecmp(s, g_apis[i].name) == 0) {
            *out = g_apis[i].key;
            return 0;
        }
    return -1;
}

static int parse_error(const char *s, rd_kafka_resp_err_t *out)
{
    const struct rd_kafka_err_desc *d;
    size_t n;
    char *end;
    long v = strtol(s, &end, 10);
    if (*s && !*end) {
        *out = (rd_kafka_resp_err_t)v;
        return 0;
    }
    if (strncmp(s, "RD_KAFKA_RESP_ERR_", 18) == 0)
        s += 18;
    else if (strncmp(s, "ERR_", 4) == 0)
        s += 4;
    rd_kafka_get_err_descs(&d, &n);
    for (size_t i = 0; i < n; i++)
        if (d[i].name && strcasecmp(d[i].name, s) == 0) {
            *out = d[i].code;
            return 0;
        }
    return -1;
}

static int cmd_errors(rd_kafka_mock_cluster_t *mc, char **av, int ac)
{
    int16_t api;
    if (ac < 4 || parse_api(av[1], &api) != 0)
        return -1;
    long cnt = strtol(av[2], NULL, 10);
    if (cnt <= 0 || cnt > 100000)
        return -1;
    rd_kafka_resp_err_t *errs = calloc((size_t)cnt, sizeof *errs);
    if (!errs)
        return -1;
    /* One error name repeats for all COUNT; several are used in turn. */
    for (long i = 0; i < cnt; i++)
        if (parse_error(av[3 + i % (ac - 3)], &errs[i]) != 0) {
            free(errs);
            return -1;
        }
    rd_kafka_mock_push_request_errors_array(mc, api, (size_t)cnt, errs);
    free(errs);
    return 0;
}

static int run_command(rd_kafka_mock_cluster_t *mc, char *line)
{
    char *av[64];
    int ac = 0;
    for (char *t = strtok(line, " \t\r\n"); t && ac < 64;
         t = strtok(NULL, " \t\r\n"))
        av[ac++] = t;
    if (ac == 0)
        return 0;
    if (strcmp(av[0], "quit") == 0) {
        g_stop = 1;
        return 0;
    }
    if (strcmp(av[0], "push_request_errors") == 0)
        return cmd_errors(mc, av, ac);
    if (strcmp(av[0], "clear_request_errors") == 0 && ac == 2) {
        int16_t api;
        if (parse_api(av[1], &api) != 0)
            return -1;
        rd_kafka_mock_clear_request_errors(mc, api);
        return 0;
    }
    if (strcmp(av[0], "topic_create") == 0 && (ac == 3 || ac == 4))
        return rd_kafka_mock_topic_create(mc, av[1], atoi(av[2]),
                                          ac == 4 ? atoi(av[3]) : 3)
                   ? -1 : 0;
    if (strcmp(av[0], "broker_down") == 0 && ac == 2)
        return rd_kafka_mock_broker_set_down(mc, atoi(av[1])) ? -1 : 0;
    if (strcmp(av[0], "broker_up") == 0 && ac == 2)
        return rd_kafka_mock_broker_set_up(mc, atoi(av[1])) ? -1 : 0;
    if (strcmp(av[0], "rtt") == 0 && ac == 3)
        return rd_kafka_mock_broker_set_rtt(mc, atoi(av[1]), atoi(av[2]))
                   ? -1 : 0;
    return -1;
}

static void usage(void)
{
    fprintf(stderr, "usage: kafka-mock [--brokers N] "
            "[--topic NAME:PARTITIONS[:REPLICAS]]...\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int brokers = 3;
    char es[256];
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--brokers") == 0 && i + 1 < argc)
            brokers = atoi(argv[++i]);
        else if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc)
            i++; /* after the cluster exists */
        else
            usage();
    if (brokers < 1 || brokers > 32)
        usage();
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "log_level", "3", es, sizeof es);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, es, sizeof es);
    rd_kafka_mock_cluster_t *mc = rk ? rd_kafka_mock_cluster_new(rk, brokers)
                                     : NULL;
    if (!mc) {
        fprintf(stderr, "kafka-mock: cannot start the mock cluster: %s\n",
                rk ? "rd_kafka_mock_cluster_new failed" : es);
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--topic") != 0)
            continue;
        char spec[300];
        snprintf(spec, sizeof spec, "%s", argv[++i]);
        char *p1 = strchr(spec, ':'), *p2 = p1 ? strchr(p1 + 1, ':') : NULL;
        if (!p1)
            usage();
        *p1++ = '\0';
        if (p2)
            *p2++ = '\0';
        if (rd_kafka_mock_topic_create(mc, spec, atoi(p1), p2 ? atoi(p2) : 3))
            usage();
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    printf("%s\nready\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);

    char line[4096];
    bool eof = false;
    while (!g_stop) {
        if (eof) {
            pause();
            continue;
        }
        if (!fgets(line, sizeof line, stdin)) {
            eof = true;
            continue;
        }
        char copy[sizeof line];
        snprintf(copy, sizeof copy, "%s", line);
        if (run_command(mc, line) == 0)
            printf("ok\n");
        else
            printf("error: cannot run: %s", copy);
        fflush(stdout);
    }
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
