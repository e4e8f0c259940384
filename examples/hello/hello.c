// SPDX-License-Identifier: GPL-2.0
/*
 * hello: the smallest useful out-of-tree module, kfarm's bundled example.
 * It logs on load and unload and exposes one read-only parameter.
 */
#include <linux/init.h>
#include <linux/module.h>
#include <linux/printk.h>

static char *greeting = "hello from kfarm";
module_param(greeting, charp, 0444);
MODULE_PARM_DESC(greeting, "Text logged when the module loads");

static int __init hello_init(void)
{
	pr_info("hello: %s\n", greeting);
	return 0;
}

static void __exit hello_exit(void)
{
	pr_info("hello: unloaded\n");
}

module_init(hello_init);
module_exit(hello_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kfarm developers");
MODULE_DESCRIPTION("Example out-of-tree module built by kfarm");
MODULE_VERSION("1.0.0");
