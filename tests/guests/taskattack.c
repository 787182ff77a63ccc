/*
 * taskattack — a hostile guest kernel against hv86's task switches
 * (vmm/task.c). The command line picks one attack (case=N), since most of
 * them end the VM:
 *
 *   1  a TSS based at hv86's code (0xFC100000) with paging off: guest
 *      physical memory there does not exist, so the new task's state reads
 *      as all ones (EFLAGS.VM among them);
 *   2  a TSS whose CR3 points beyond guest RAM (0xFFFFF000);
 *   3  a TSS whose CR3 points at a page of junk (every PDE all ones);
 *   4  a task running translated kernel code on a stack at the top of the
 *      linear space (ESP 0xFFFFFFF0, ESP0 0xFC001000, paging off): its
 *      pushes fall beyond guest RAM, its pops read all ones; it then
 *      switches back and the guest reports what it read;
 *   5  a task whose CS is one of hv86's own GDT slots (0xFFF8) and whose SS
 *      is the vCPU state segment's (0xFFF0): #TS in the new task, which
 *      has no usable stack, so the fault goes to the new TSS's ring-0
 *      stack (ESP0 in the monitor range, paging off).
 *
 * What hv86 must do: give the guest the fault a PC gives, or stop this VM
 * with a reason; never touch the monitor (test_vms.py isolation checks the
 * monitor's checksum and the guests running beside it). For hv86 only
 * (HV_GUESTS): natively these run into open bus and triple faults.
 */
#include "guest.h"

#define SEL_ATSS   (SEL_SPARE + 0)
#define MON_CODE   0xFC100000u
#define JUNK_CR3   0xFFFFF000u

static struct tss32 task ALIGNED(128);
static pte_t junk_pd[1024] ALIGNED(PAGE_SIZE);
uint32_t popped;
extern char attack_entry[];
asm(".text\nattack_entry:\n pushl $0x1234\n popl %eax\n movl %eax, popped\n"
    "ljmp $0x28, $0\n jmp attack_entry\n");

static void task_init(uint32_t base, uint32_t limit)
{
    task = (struct tss32){ .eip = (uint32_t)attack_entry, .eflags = 0x2, .esp = 0x90000, .cs = SEL_KCODE,
                           .ss = SEL_KDATA, .ds = SEL_KDATA, .es = SEL_KDATA, .iomap = sizeof(task) };
    gdt[SEL_ATSS >> 3] = seg_make(base, limit, DA_P | DA_TSS32, 0);
}

static void go(void)
{
    printf("taskattack: switching\n");
    asm volatile("ljmp %0, $0" : : "i"(SEL_ATSS) : "memory");
    clts();
}

void guest_main(void)
{
    uint32_t c = boot_arg("case", 0);
    task_init((uint32_t)&task, sizeof(task) - 1);
    switch (c) {
    case 1:
        gdt[SEL_ATSS >> 3] = seg_make(MON_CODE, 0xFFFF, DA_P | DA_TSS32, 0);
        go();
        break;
    case 2: case 3: {
        uint32_t pd = paging_identity();
        for (unsigned i = 0; i < 1024; i++)
            junk_pd[i] = 0xFFFFFFFFu;
        task.cr3 = c == 2 ? JUNK_CR3 : (uint32_t)junk_pd;
        paging_enable(pd);
        go();
        paging_disable();
        break;
    }
    case 4:
        task.esp = 0xFFFFFFF0u;
        task.esp0 = 0xFC001000u;
        task.ss0 = SEL_KDATA;
        go();
        check_eq("stack-beyond-ram-reads-ones", popped, 0xFFFFFFFFu);
        break;
    case 5:
        task.cs = 0xFFF8;
        task.ss = 0xFFF0;
        task.esp0 = 0xFC001000u;
        task.ss0 = SEL_KDATA;
        go();
        break;
    default:
        skip("case", "no case=N given");
        break;
    }
    check("returned", true, "%s", "");
}
