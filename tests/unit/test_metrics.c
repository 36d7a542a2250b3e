/* test_metrics.c - lib/metrics.c's counters and text, and the parsers of
 * the [daemon] keys (metrics_listen, log_level). */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../../lib/config.h"
#include "../../lib/log.h"
#include "../../lib/metrics.h"
#include "check.h"

static void collect(void *arg, struct sky_metrics_text *t)
{
    sky_metrics_family(t, "skyfs_test_gauge", "gauge", "A test gauge.");
    sky_metrics_sample(t, "skyfs_test_gauge", "cloud", arg, 2.5);
}

TEST(metrics_text_counts_http_attempts_by_cloud_method_and_outcome)
{
    sky_metrics_reset();
    struct sky_metrics_cloud *c = sky_metrics_cloud("photos");
    CHECK(c != NULL);
    CHECK(sky_metrics_cloud("photos") == c);
    sky_metrics_http(c, "GET", SKY_OUTCOME_SUCCESS, 0.003, 0, 100);
    sky_metrics_http(c, "GET", SKY_OUTCOME_SUCCESS, 0.2, 0, 50);
    sky_metrics_http(c, "PUT", SKY_OUTCOME_SERVER_ERROR, 40, 1000, 0);
    sky_metrics_http(c, "PROPFIND", SKY_OUTCOME_NETWORK_ERROR, 1, 0, 0);
    sky_metrics_http_retry(c);
    sky_metrics_http(NULL, "GET", SKY_OUTCOME_SUCCESS, 1, 1, 1);   /* not counted */
    sky_metrics_inc(SKY_M_META_HITS);
    sky_metrics_inc(SKY_M_META_HITS);
    size_t len = 0;
    char *text = sky_metrics_render(&len);
    CHECK(text != NULL);
    if (!text)
        return;
    CHECK_INT(strlen(text), len);
    CHECK(strstr(text, "skyfs_cloud_requests_total{cloud=\"photos\",method=\"GET\","
                       "outcome=\"success\"} 2\n"));
    CHECK(strstr(text, "skyfs_cloud_requests_total{cloud=\"photos\",method=\"PUT\","
                       "outcome=\"server_error\"} 1\n"));
    CHECK(strstr(text, "method=\"OTHER\",outcome=\"network_error\"} 1\n"));
    /* cumulative buckets: 3 ms in le=0.005, 200 ms from le=0.25 on */
    CHECK(strstr(text, "skyfs_cloud_request_duration_seconds_bucket{cloud=\"photos\","
                       "method=\"GET\",le=\"0.005\"} 1\n"));
    CHECK(strstr(text, "method=\"GET\",le=\"0.1\"} 1\n"));
    CHECK(strstr(text, "method=\"GET\",le=\"0.25\"} 2\n"));
    CHECK(strstr(text, "method=\"GET\",le=\"+Inf\"} 2\n"));
    CHECK(strstr(text, "skyfs_cloud_request_duration_seconds_count{cloud=\"photos\","
                       "method=\"GET\"} 2\n"));
    /* 40 s is past the last bound: only +Inf holds it */
    CHECK(strstr(text, "method=\"PUT\",le=\"30\"} 0\n"));
    CHECK(strstr(text, "method=\"PUT\",le=\"+Inf\"} 1\n"));
    CHECK(strstr(text, "skyfs_cloud_sent_bytes_total{cloud=\"photos\"} 1000\n"));
    CHECK(strstr(text, "skyfs_cloud_received_bytes_total{cloud=\"photos\"} 150\n"));
    CHECK(strstr(text, "skyfs_cloud_request_retries_total{cloud=\"photos\"} 1\n"));
    CHECK(strstr(text, "skyfs_cache_metadata_hits_total 2\n"));
    CHECK(strstr(text, "# TYPE skyfs_cloud_request_duration_seconds histogram\n"));
    CHECK(strstr(text, "skyfs_build_info{version=\""));
    CHECK(!strstr(text, "skyfs_test_gauge"));
    free(text);
    sky_metrics_reset();
}

TEST(metrics_collector_adds_families_and_label_values_are_escaped)
{
    sky_metrics_reset();
    sky_metrics_set_collector(collect, "a \"quoted\" \\ name\nx");
    char *text = sky_metrics_render(NULL);
    CHECK(text && strstr(text, "# HELP skyfs_test_gauge A test gauge.\n"
                               "# TYPE skyfs_test_gauge gauge\n"
                               "skyfs_test_gauge{cloud=\"a \\\"quoted\\\" \\\\ name\\nx\"} 2.5\n"));
    CHECK(text && strstr(text, "skyfs_start_time_seconds "));
    free(text);
    sky_metrics_set_collector(NULL, NULL);
    text = sky_metrics_render(NULL);
    CHECK(text && !strstr(text, "skyfs_test_gauge"));
    free(text);
}

TEST(metrics_listen_takes_ip_literals_and_ports)
{
    struct sockaddr_storage sa;
    unsigned len;
    CHECK_INT(sky_parse_listen("127.0.0.1:9101", &sa, &len), 0);
    CHECK_INT(sa.ss_family, AF_INET);
    CHECK_INT(ntohs(((struct sockaddr_in *)&sa)->sin_port), 9101);
    CHECK_INT(sky_parse_listen("[::1]:65535", &sa, &len), 0);
    CHECK_INT(sa.ss_family, AF_INET6);
    CHECK_INT(len, sizeof(struct sockaddr_in6));
    static const char *bad[] = { "localhost:9101", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536",
                                 "127.0.0.1:80x", ":9101", "[::1:9101", "::1:9101", "", NULL };
    for (int i = 0; bad[i]; i++)
        CHECK_INT(sky_parse_listen(bad[i], &sa, &len), -22);
}

TEST(log_levels_parse)
{
    enum sky_log_level l;
    CHECK_INT(sky_log_parse_level("debug", &l), 0);
    CHECK_INT(l, SKY_LOG_DEBUG);
    CHECK_INT(sky_log_parse_level("WARNING", &l), 0);
    CHECK_INT(l, SKY_LOG_WARN);
    CHECK_INT(sky_log_parse_level("error", &l), 0);
    CHECK_INT(l, SKY_LOG_ERROR);
    CHECK_INT(sky_log_parse_level("loud", &l), -22);
}
