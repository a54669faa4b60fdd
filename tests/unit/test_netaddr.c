/* test_netaddr.c -- CIDR sets and the client address behind proxies. */
#include "cm.h"

#include "netaddr.h"

static void netaddr__cidrs(void **state)
{
    (void)state;
    struct p2a_cidr *set;
    size_t n;
    const char *why = NULL;
    assert_int_equal(netaddr_cidr_list_parse("10.0.0.0/8, 192.168.1.7 ,fd00::/8", 8, &set, &n,
                                             &why),
                     P2A_OK);
    assert_int_equal(n, 3);
    assert_true(netaddr_in(set, n, "10.1.2.3"));
    assert_false(netaddr_in(set, n, "11.0.0.1"));
    assert_true(netaddr_in(set, n, "192.168.1.7"));
    assert_false(netaddr_in(set, n, "192.168.1.8"));
    assert_true(netaddr_in(set, n, "fd12::1"));
    assert_false(netaddr_in(set, n, "fe80::1"));
    assert_true(netaddr_in(set, n, "::ffff:10.9.9.9")); /* IPv4-mapped is IPv4 */
    assert_false(netaddr_in(set, n, "not an address"));
    free(set);
    struct p2a_cidr one;
    assert_int_equal(netaddr_cidr_parse("10.0.0.0/33", &one), P2A_ERR_INVALID);
    assert_int_equal(netaddr_cidr_parse("10.0.0.0/", &one), P2A_ERR_INVALID);
    assert_int_equal(netaddr_cidr_parse("10.0.0.0/-1", &one), P2A_ERR_INVALID);
    assert_int_equal(netaddr_cidr_parse("example.com", &one), P2A_ERR_INVALID);
    assert_int_equal(netaddr_cidr_parse("10.128.0.0/9", &one), P2A_OK);
    assert_true(netaddr_in(&one, 1, "10.200.0.1"));
    assert_false(netaddr_in(&one, 1, "10.127.0.1"));
    assert_int_equal(netaddr_cidr_list_parse("1.1.1.1,2.2.2.2,3.3.3.3", 2, &set, &n, &why),
                     P2A_ERR_INVALID);
    assert_int_equal(netaddr_cidr_list_parse("1.1.1.1,bogus", 8, &set, &n, &why),
                     P2A_ERR_INVALID);
    assert_int_equal(netaddr_cidr_list_parse("", 8, &set, &n, &why), P2A_OK);
    assert_int_equal(n, 0);
}

static void netaddr__client_behind_proxies(void **state)
{
    (void)state;
    struct p2a_cidr *px;
    size_t n;
    const char *why;
    assert_int_equal(netaddr_cidr_list_parse("10.0.0.0/8", 8, &px, &n, &why), P2A_OK);
    char out[NETADDR_MAX];
    /* an untrusted peer: its headers are ignored */
    netaddr_client(px, n, "203.0.113.5", "1.2.3.4", NULL, out);
    assert_string_equal(out, "203.0.113.5");
    /* a trusted peer: the right-most untrusted hop; what the client wrote to its left is not
     * believed */
    netaddr_client(px, n, "10.0.0.1", "6.6.6.6, 198.51.100.9, 10.1.1.1", NULL, out);
    assert_string_equal(out, "198.51.100.9");
    netaddr_client(px, n, "10.0.0.1", "198.51.100.9:5000", NULL, out);
    assert_string_equal(out, "198.51.100.9");
    /* no header: the proxy itself */
    netaddr_client(px, n, "10.0.0.1", NULL, NULL, out);
    assert_string_equal(out, "10.0.0.1");
    /* every hop trusted: the left-most */
    netaddr_client(px, n, "10.0.0.1", "10.2.2.2, 10.3.3.3", NULL, out);
    assert_string_equal(out, "10.2.2.2");
    /* garbage where the client should be: stay with the last trusted hop */
    netaddr_client(px, n, "10.0.0.1", "nonsense, 10.3.3.3", NULL, out);
    assert_string_equal(out, "10.3.3.3");
    /* RFC 7239 Forwarded when there is no X-Forwarded-For */
    netaddr_client(px, n, "10.0.0.1", NULL,
                   "for=6.6.6.6;proto=https, For=\"[2001:DB8::1]:4711\";by=10.0.0.1", out);
    assert_string_equal(out, "2001:db8::1");
    netaddr_client(px, n, "10.0.0.1", NULL, "for=unknown", out);
    assert_string_equal(out, "10.0.0.1");
    /* canonical forms: one client, one key */
    netaddr_client(px, n, "::ffff:10.0.0.1", "2001:0DB8:0:0::1", NULL, out);
    assert_string_equal(out, "2001:db8::1");
    free(px);
}

/* Where a fetch may go: the public Internet only; loopback when a test allows it. */
/* Limits count an IPv6 client by its /64: its other addresses are the same client. */
static void netaddr__limit_key_is_the_ipv6_slash_64(void **state)
{
    (void)state;
    char k[NETADDR_MAX], k2[NETADDR_MAX];
    netaddr_limit_key("203.0.113.9", k);
    assert_string_equal(k, "203.0.113.9");
    netaddr_limit_key("::ffff:203.0.113.9", k);
    assert_string_equal(k, "203.0.113.9");
    netaddr_limit_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd", k);
    assert_string_equal(k, "2001:db8:1:2::/64");
    netaddr_limit_key("2001:0db8:0001:0002:0000:0000:0000:0001", k2);
    assert_string_equal(k, k2);
    netaddr_limit_key("2001:db8:1:3::1", k2); /* the next subnet is another client */
    assert_string_equal(k2, "2001:db8:1:3::/64");
    netaddr_limit_key("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", k);
    assert_string_equal(k, "ffff:ffff:ffff:ffff::/64");
    netaddr_limit_key("::1", k);
    assert_string_equal(k, "::/64");
    netaddr_limit_key("unknown", k);
    assert_string_equal(k, "unknown");
}

static void netaddr__public_addresses(void **state)
{
    (void)state;
    static const char *const public[] = {"93.184.215.14", "8.8.8.8", "1.1.1.1", "172.32.0.1",
                                         "100.128.0.1", "2606:4700::1111", "2a00:1450::1",
                                         "::ffff:8.8.8.8"};
    static const char *const special[] = {
        "10.1.2.3",        "172.16.0.1",    "172.31.255.255", "192.168.1.1",  "169.254.169.254",
        "100.64.0.1",      "0.0.0.0",       "224.0.0.1",      "239.1.1.1",    "255.255.255.255",
        "198.18.0.1",      "192.0.2.1",     "203.0.113.9",    "::",           "fe80::1",
        "fc00::1",         "fd00:ec2::254", "ff02::1",        "2001:db8::1",  "64:ff9b::a00:1",
        "2002:a00:1::",    "::ffff:10.0.0.1", "::ffff:169.254.169.254", "not an address"};
    for (size_t i = 0; i < sizeof(public) / sizeof(public[0]); i++)
        if (!netaddr_is_public(public[i], false))
            fail_msg("%s should be public", public[i]);
    for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++)
        if (netaddr_is_public(special[i], true))
            fail_msg("%s should be refused", special[i]);
    assert_false(netaddr_is_public("127.0.0.1", false));
    assert_false(netaddr_is_public("::1", false));
    assert_false(netaddr_is_public("127.8.8.8", false));
    assert_true(netaddr_is_public("127.0.0.1", true));
    assert_true(netaddr_is_public("::1", true));
    assert_true(netaddr_is_public("::ffff:127.0.0.1", true));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(netaddr__cidrs),
        cmocka_unit_test(netaddr__client_behind_proxies),
        cmocka_unit_test(netaddr__public_addresses),
        cmocka_unit_test(netaddr__limit_key_is_the_ipv6_slash_64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
